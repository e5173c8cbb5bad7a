rule prepare:
    """Read, mask, trim and guess one galaxy's cube. A bad or missing cube becomes a failed status.json (exit 0).

    Writes results/<galaxy>/prepare/: cube.fits, mask.fits, noise.fits (when the noise varies), obspars.json,
    prepare.json and, last, status.json, the only declared output: a failed galaxy has no other files, and the rule
    is redone when status.json is missing or older than its inputs.
    """
    input:
        cube=cube_input,
    output:
        status=os.path.join(RESULTS, "{galaxy}", "prepare", "status.json"),
    log:
        "logs/prepare/{galaxy}.log",
    benchmark:
        os.path.join(RESULTS, "benchmarks", "prepare", "{galaxy}.tsv")
    conda:
        "../envs/kinms.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 20 * attempt,
    params:
        cube=cube_path,
        reading=reading_args,
        outdir=lambda wildcards, output: os.path.dirname(output.status),
    shell:
        "kinms-core prepare {params.cube:q} -o {params.outdir:q} --galaxy {wildcards.galaxy} --record-failure"
        " {params.reading} > {log} 2>&1"
