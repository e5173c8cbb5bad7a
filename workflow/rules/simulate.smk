if config["simulate"]:

    rule simulate:
        """Mock cube of one galaxy of the mock table (true parameters, grid, noise, FITS format)."""
        output:
            cube=os.path.join(RESULTS, "mocks", "{galaxy}.fits"),
        log:
            "logs/simulate/{galaxy}.log",
        wildcard_constraints:
            galaxy=MOCK_PATTERN,
        conda:
            "../envs/kinms.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            table=config["mocks"],
            row=mock_row,
        shell:
            "kinms-core simulate --table {params.table:q} --galaxy {wildcards.galaxy} -o {output.cube:q} > {log} 2>&1"
