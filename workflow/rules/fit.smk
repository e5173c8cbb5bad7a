rule fit_settings:
    """The survey's fit settings (model, parameters, fit of the config) as the YAML file every fit reads."""
    output:
        settings=os.path.join(RESULTS, "survey", "settings.yaml"),
    log:
        "logs/fit_settings.log",
    localrule: True
    params:
        settings=FIT_SETTINGS,
    run:
        survey.write_settings(params.settings, output.settings)


rule fit:
    """Fit one galaxy (emcee, checkpointed in chain.h5 so a killed job resumes). Each job is one galaxy; its worker
    processes are the job's threads: one by default, since a survey fits one galaxy per core faster than it fits
    galaxies one after another with several processes each (--set-threads fit=N for one galaxy sooner). A
    recognised failure becomes a failed status.json (exit 0).

    Writes results/<galaxy>/fit/: map.json (the start and the error model), chain.h5, summary.json, posterior.csv,
    model.fits, residual.fits and, last, status.json, the only declared output, so that Snakemake never deletes the
    chain of an interrupted fit (a rerun resumes from it) nor a failed galaxy's record.
    """
    input:
        prepared=rules.prepare.output.status,
        settings=rules.fit_settings.output.settings,
    output:
        status=os.path.join(RESULTS, "{galaxy}", "fit", "status.json"),
    log:
        "logs/fit/{galaxy}.log",
    benchmark:
        os.path.join(RESULTS, "benchmarks", "fit", "{galaxy}.tsv")
    conda:
        "../envs/kinms.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
    params:
        overrides=override_args,
        prepared=lambda wildcards, input: os.path.dirname(input.prepared),
        outdir=lambda wildcards, output: os.path.dirname(output.status),
    shell:
        "kinms-core fit {params.prepared:q} --settings {input.settings:q} -o {params.outdir:q} --threads {threads}"
        " --galaxy {wildcards.galaxy} --record-failure --no-progress --no-plots {params.overrides} > {log} 2>&1"


rule family_settings:
    """The fit settings of one extra model family (config families:), as the YAML file its fits read."""
    output:
        settings=os.path.join(RESULTS, "survey", "settings_{family}.yaml"),
    log:
        "logs/family_settings/{family}.log",
    localrule: True
    params:
        settings=lambda wildcards: FAMILIES[wildcards.family],
    run:
        survey.write_settings(params.settings, output.settings)


rule fit_family:
    """Fit one galaxy with an extra model family, for the catalogue's model comparison; its plots go beside it.
    Resumable and recorded as the main fit is."""
    input:
        prepared=rules.prepare.output.status,
        settings=rules.family_settings.output.settings,
    output:
        status=os.path.join(RESULTS, "{galaxy}", "families", "{family}", "status.json"),
    log:
        "logs/families/{family}/{galaxy}.log",
    conda:
        "../envs/kinms.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
    params:
        overrides=override_args,
        prepared=lambda wildcards, input: os.path.dirname(input.prepared),
        outdir=lambda wildcards, output: os.path.dirname(output.status),
    shell:
        "kinms-core fit {params.prepared:q} --settings {input.settings:q} -o {params.outdir:q} --threads {threads}"
        " --galaxy {wildcards.galaxy} --record-failure --no-progress {params.overrides} > {log} 2>&1"
