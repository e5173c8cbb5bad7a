"""Every bad input a survey may hold ends as a recorded failure with a message a person can act on, and only bad
input does: a bug or a file-system error fails the job instead (it is retried and redone)."""

from __future__ import annotations

import json

import pytest
from bad_inputs import write_bad_inputs

from kinms_core.cli import main
from kinms_core.errors import InputError
from kinms_core.prepare import prepare_cube


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return write_bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "name",
    [
        "truncated",
        "not_fits",
        "image_2d",
        "all_nan",
        "no_beam",
        "freq_no_restfreq",
        "pure_noise",
        "missing_file",
        "non_celestial",
        "enormous",
        "sentinel_1e30",
        "continuum",
    ],
)
def test_bad_input_fails_with_a_specific_message_and_is_recorded(bad_inputs, tmp_path, name):
    path, words = bad_inputs[name]
    with pytest.raises(InputError) as info:
        prepare_cube(path, tmp_path / "direct")
    message = str(info.value)
    assert words.lower() in message.lower()
    assert path in message  # names the file
    outdir = tmp_path / "recorded"
    assert main(["prepare", path, "-o", str(outdir), "--galaxy", name, "--record-failure"]) == 0
    status = json.loads((outdir / "status.json").read_text())
    assert status == {"status": "failed", "stage": "prepare", "galaxy": name, "error": message}
