"""The worker plugin (its own module: importing it imports dask.distributed)."""

from distributed.diagnostics.plugin import WorkerPlugin

from ._workers import PLUGIN_NAME, warm_kernels


class FastalWorker(WorkerPlugin):
    """Loads fastal's kernels once per worker process, when it starts (see ``_workers``)."""

    name = PLUGIN_NAME

    def setup(self, worker):
        warm_kernels()
        worker._fastal_warm = True
