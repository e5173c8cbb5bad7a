"""KinMS-style kinematic fits of a survey of spectral-line cubes.

    snakemake --cores all                       # the demo: a mock survey made from config/mocks.csv
    snakemake --report results/report.html      # HTML report of the plots
    snakemake --profile profiles/slurm # every job on SLURM

Rules are in workflow/rules/*.smk; all the science is in the kinms_core package they call.
"""

from snakemake.utils import min_version

min_version("9.0")


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
