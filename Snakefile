"""KinMS-style kinematic fits of a survey of spectral-line cubes.

    snakemake --cores all                       # the demo: a mock survey made from config/mocks.csv
    snakemake --cores all --configfile my.yaml  # your survey: my.yaml alone, library defaults for the rest
    snakemake --report results/report.html      # HTML report of the plots
    snakemake --profile profiles/slurm # every job on SLURM

Rules are in workflow/rules/*.smk; all the science is in the kinms_core package they call.
"""

from snakemake.utils import min_version

min_version("9.0")


# The demo's config only when no --configfile is given: Snakemake would otherwise merge a user's config over the
# demo's, and a survey would silently run with the demo's settings wherever its own config is silent.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/catalogue.smk"


# The catalogue (CSV, FITS), survey plots, provenance and every galaxy's plots.
rule all:
    default_target: True
    input:
        all_outputs(),
    localrule: True


# A galaxy whose job crashed (a bug, a full disk, a killed job) has no status.json, so the catalogue rule cannot
# run; the catalogue is then made here from whatever exists, the crashed galaxy being a failed row that names its
# log. The run still fails (Snakemake exits non-zero), and a rerun redoes the crashed jobs and the catalogue.
onerror:
    write_partial_catalogue()
