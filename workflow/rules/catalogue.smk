rule catalogue:
    """One row per galaxy of the sheet: fitted values and errors, diagnostics, true values, or the failure."""
    input:
        prepared=galaxy_files("prepare", "status.json"),
        fits=galaxy_files("fit", "status.json"),
        families=family_files(),
        sheet=config["galaxies"],
        settings=rules.fit_settings.output.settings,
        family_settings=expand(rules.family_settings.output.settings, family=FAMILIES),
        mocks=mock_table(),
    output:
        csv=report(
            os.path.join(RESULTS, "catalogue.csv"),
            caption="../report/catalogue.rst",
            category="Survey",
            labels={"figure": "catalogue"},
        ),
        fits=os.path.join(RESULTS, "catalogue.fits"),
    log:
        "logs/catalogue.log",
    conda:
        "../envs/kinms.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        results=lambda wildcards, output: os.path.dirname(output.csv),
        mocks=lambda wildcards, input: (
            shlex.join(["--mocks", *input.mocks]) if input.mocks else ""
        ),
        families=family_args,
    shell:
        "kinms-core catalogue --sheet {input.sheet:q} --results {params.results:q} -o {output.csv:q}"
        " --fits {output.fits:q} --settings {input.settings:q} {params.mocks} {params.families} > {log} 2>&1"


rule survey_plots:
    """Recovery, pull and distribution plots of the catalogue."""
    input:
        catalogue=rules.catalogue.output.csv,
    output:
        recovery=report(
            os.path.join(RESULTS, "survey", "recovery.png"),
            caption="../report/recovery.rst",
            category="Survey",
            labels={"figure": "recovery"},
        ),
        pulls=report(
            os.path.join(RESULTS, "survey", "pulls.png"),
            caption="../report/pulls.rst",
            category="Survey",
            labels={"figure": "pulls"},
        ),
        distributions=report(
            os.path.join(RESULTS, "survey", "distributions.png"),
            caption="../report/distributions.rst",
            category="Survey",
            labels={"figure": "distributions"},
        ),
    log:
        "logs/survey_plots.log",
    conda:
        "../envs/kinms.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        outdir=lambda wildcards, output: os.path.dirname(output.recovery),
    shell:
        "kinms-core survey-plots --catalogue {input.catalogue:q} -o {params.outdir:q} > {log} 2>&1"


rule provenance:
    """Software versions, the code's git commit, the full config, the sheet and the mock table."""
    input:
        sheet=config["galaxies"],
        mocks=mock_table(),
    output:
        provenance=os.path.join(RESULTS, "survey", "provenance.json"),
    log:
        "logs/provenance.log",
    localrule: True
    params:
        config=config,
    run:
        survey.write_provenance(
            output.provenance,
            config=params.config,
            sheet=input.sheet,
            mocks=config["mocks"],
            workflow_dir=workflow.basedir,
        )
