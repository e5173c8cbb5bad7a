rule plots:
    """Diagnostic (moments, spectrum, PV, residual), corner and trace plots of one galaxy; placeholders stating the
    failure when it failed."""
    input:
        prepared=rules.prepare.output.status,
        fit=rules.fit.output.status,
    output:
        diagnostics=report(
            os.path.join(RESULTS, "{galaxy}", "plots", "diagnostics.png"),
            caption="../report/diagnostics.rst",
            category="Galaxies",
            subcategory="{galaxy}",
            labels={"galaxy": "{galaxy}", "figure": "diagnostics"},
        ),
        corner=report(
            os.path.join(RESULTS, "{galaxy}", "plots", "corner.png"),
            caption="../report/corner.rst",
            category="Galaxies",
            subcategory="{galaxy}",
            labels={"galaxy": "{galaxy}", "figure": "corner"},
        ),
        traces=report(
            os.path.join(RESULTS, "{galaxy}", "plots", "traces.png"),
            caption="../report/traces.rst",
            category="Galaxies",
            subcategory="{galaxy}",
            labels={"galaxy": "{galaxy}", "figure": "traces"},
        ),
        rotation=report(
            os.path.join(RESULTS, "{galaxy}", "plots", "rotation.png"),
            caption="../report/rotation.rst",
            category="Galaxies",
            subcategory="{galaxy}",
            labels={"galaxy": "{galaxy}", "figure": "rotation"},
        ),
    log:
        "logs/plots/{galaxy}.log",
    conda:
        "../envs/kinms.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        truths=truth_args,
        prepared=lambda wildcards, input: os.path.dirname(input.prepared),
        fit=lambda wildcards, input: os.path.dirname(input.fit),
        outdir=lambda wildcards, output: os.path.dirname(output.diagnostics),
    shell:
        "kinms-core plot {params.fit:q} --prepared {params.prepared:q} -o {params.outdir:q}"
        " --galaxy {wildcards.galaxy} {params.truths} > {log} 2>&1"
