"""A benchmark module that fails, to show the harness reports it and carries on."""


def run(ctx):
    raise RuntimeError("the thing under test is not there")
