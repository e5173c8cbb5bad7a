"""Drop-in adapters for the seed tutorial's KinMS-style calls, built on :mod:`kinms_core`."""
