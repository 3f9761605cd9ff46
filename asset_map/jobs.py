"""Imports in the background: a procrastinate queue kept in PostgreSQL (no other server), worked by `asset-map worker`
(which `asset-map serve` and `make run` start beside the web server).

A web import is a row of ``import_jobs`` (progress, error, outcome, for the register page) and a procrastinate job
that runs ``importer.import_register``, the very function the CLI runs, on the uploaded file with its saved mapping.
Two imports of one register never run at once: their jobs share a procrastinate ``lock`` (run one after the other),
only one may wait in the queue (``queueing_lock``), and the importer itself takes an advisory lock per register. The
import is one transaction: a failed job, or a worker killed half way, leaves the database as it was.
"""

import logging
import os
from pathlib import Path

from sqlalchemy import text

from asset_map import audit
from asset_map.config import load_settings
from asset_map.errors import AssetMapError, InputError, NotFound

log = logging.getLogger(__name__)
QUEUE = "imports"
TASK = "asset_map.import_register"
# A job whose worker has sent no heartbeat for this long is reported as interrupted (procrastinate's workers beat
# every 10 s by default).
STALLED_AFTER_S = 60
# The popular public downloads made ahead of time (api.kept.prepare) after an import, and checked every few minutes
# for the data's other writers (edits, moderation, loads): a job of the same queue, one waiting at most.
PREPARE_TASK = "asset_map.prepare_exports"
PREPARE_LOCK = "prepare-exports"
PREPARE_CRON = "*/5 * * * *"


def make_app(settings=None):
    """A procrastinate App over the project's database, with the import task."""
    import procrastinate

    from asset_map.store.db import database_url

    settings = settings or load_settings()
    url = database_url(settings).replace("postgresql+psycopg://", "postgresql://", 1)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=3))

    def run_import(import_job_id):
        """The task: run one queued import (in the worker's process), over the same settings."""
        from asset_map.store.db import get_engine

        run(get_engine(settings), int(import_job_id), settings)

    app.task(name=TASK, queue=QUEUE)(run_import)

    def prepare_exports(timestamp=None):
        """The task: make the popular public downloads for the data as it is now (nothing when they are kept)."""
        from asset_map.api import kept
        from asset_map.store.db import get_engine

        for layer_id, fmt, path, seconds, made in kept.prepare(get_engine(settings), settings):
            if made:
                log.info("prepared %s.%s in %.1f s: %s", layer_id, fmt, seconds, path.name)

    task = app.task(name=PREPARE_TASK, queue=QUEUE, lock=PREPARE_LOCK, queueing_lock=PREPARE_LOCK)(prepare_exports)
    app.periodic(cron=PREPARE_CRON, periodic_id="check")(task)
    return app


def defer_prepare(settings=None):
    """Queue the making of the popular public downloads (api.kept.prepare) for the worker; returns whether it was
    queued (one waits at most: another already waiting will see the same data). Never the caller's error: without a
    worker, the first download makes the file instead."""
    from procrastinate.exceptions import AlreadyEnqueued

    app = make_app(settings)
    try:
        with app.open():
            app.configure_task(PREPARE_TASK, lock=PREPARE_LOCK, queueing_lock=PREPARE_LOCK, queue=QUEUE).defer()
        return True
    except AlreadyEnqueued:
        return False
    except Exception as err:  # noqa: BLE001 - logged: a download will make the file
        log.warning("could not queue the making of the public downloads: %s", err)
        return False


def enqueue(engine, *, register, upload_id, actor, settings=None):
    """Queue the import of an upload as ``register``; returns the import job's id. An InputError when an import of
    the register is already waiting or running."""
    from procrastinate.exceptions import AlreadyEnqueued

    with engine.begin() as conn:
        busy = conn.execute(text("SELECT id FROM import_jobs WHERE register = :r AND status IN ('queued', 'running') "
                                 "AND finished_at IS NULL"), {"r": register}).scalar()
        if busy and not _interrupted(conn, busy):
            msg = f"An import of register {register!r} is already waiting or running (job {busy}); wait for it."
            raise InputError(msg)
        job_id = conn.execute(text("INSERT INTO import_jobs (register, upload_id, actor) VALUES (:r, :u, :a) "
                                   "RETURNING id"), {"r": register, "u": upload_id, "a": actor}).scalar_one()
        audit.record(conn, actor=actor, action="import-queued", target=register,
                     details={"upload_id": upload_id, "import_job": job_id})
    app = make_app(settings)
    try:
        with app.open():
            queued = app.configure_task(TASK, lock=f"import:{register}", queueing_lock=f"import:{register}",
                                        queue=QUEUE).defer(import_job_id=job_id)
    except AlreadyEnqueued as err:
        _finish(engine, job_id, "failed", error="Another import of this register was already waiting.")
        msg = f"An import of register {register!r} is already waiting; wait for it to finish."
        raise InputError(msg) from err
    with engine.begin() as conn:
        conn.execute(text("UPDATE import_jobs SET job_id = :j WHERE id = :i"), {"j": queued, "i": job_id})
    return job_id


def run(engine, job_id, settings=None):
    """Run import job ``job_id`` (what the worker does; tests call it directly too)."""
    from asset_map.registers import importer
    from asset_map.registers.mapping import Mapping

    settings = settings or load_settings()
    with engine.begin() as conn:
        job = conn.execute(text("SELECT id, register, upload_id, actor FROM import_jobs WHERE id = :i"),
                           {"i": job_id}).mappings().first()
        if job is None:
            msg = f"No import job {job_id}."
            raise NotFound(msg)
        upload = conn.execute(text("SELECT id, original_name, stored_name, mapping FROM register_uploads "
                                   "WHERE id = :u"), {"u": job["upload_id"]}).mappings().first()
        conn.execute(text("UPDATE import_jobs SET status = 'running', started_at = now(), step = 'starting' "
                          "WHERE id = :i"), {"i": job_id})
    progress = {}

    def step(name, **counts):
        progress.update(counts)
        with engine.begin() as conn:
            conn.execute(text("UPDATE import_jobs SET step = :s, progress = CAST(:p AS jsonb) WHERE id = :i"),
                         {"s": name, "p": _json(progress), "i": job_id})

    try:
        if upload is None:
            raise NotFound(f"The uploaded file of job {job_id} is gone.")
        from asset_map.registers import uploads

        path = uploads.path_of(settings, upload["stored_name"])
        mapping = Mapping.from_dict(uploads.mapping_keys(upload["mapping"]), source="mapping form") \
            if upload["mapping"] else None
        report = importer.import_register(engine, path, register=job["register"], mapping=mapping,
                                          settings=settings, progress=step, actor=job["actor"],
                                          source_name=upload["original_name"], upload_id=upload["id"])
    except AssetMapError as err:
        _failed(engine, job, err.user_message)
        return None
    except Exception:
        log.exception("import job %s failed", job_id)
        _failed(engine, job, "The import stopped on an unexpected error (it has been logged). Nothing was changed.")
        raise
    with engine.begin() as conn:
        import_id = conn.execute(text("SELECT max(id) FROM register_imports WHERE register = :r"),
                                 {"r": job["register"]}).scalar()
    _finish(engine, job_id, "succeeded", import_id=import_id,
            progress=progress | {"inserted": report.inserted, "updated": report.updated,
                                 "unchanged": report.unchanged, "withdrawn": report.withdrawn})
    defer_prepare(settings)  # the public downloads made again for the new data, by the worker, not a visitor
    return report


def _failed(engine, job, message):
    _finish(engine, job["id"], "failed", error=message)
    with engine.begin() as conn:
        audit.record(conn, actor=job["actor"], action="import-failed", target=job["register"],
                     details={"import_job": job["id"], "error": message})


def _finish(engine, job_id, status, *, error=None, import_id=None, progress=None):
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE import_jobs SET status = CAST(:s AS text), error = :e, import_id = :imp, finished_at = now(), "
            "step = CASE WHEN CAST(:s AS text) = 'succeeded' THEN 'done' ELSE step END, "
            "progress = COALESCE(CAST(:p AS jsonb), progress) WHERE id = :i"),
            {"s": status, "e": error, "imp": import_id, "p": _json(progress) if progress else None, "i": job_id})


def _json(value):
    import json

    return json.dumps(value, default=str)


def _interrupted(conn, job_id):
    """Whether a queued or running import's worker is gone (killed, machine restarted): procrastinate's job is
    'doing' but its worker sent no heartbeat lately, or the job is no longer in the queue at all."""
    row = conn.execute(text(
        "SELECT j.status, j.job_id, p.status AS queue_status, w.last_heartbeat, "
        "extract(epoch FROM now() - w.last_heartbeat) AS silent_s FROM import_jobs j "
        "LEFT JOIN procrastinate_jobs p ON p.id = j.job_id "
        "LEFT JOIN procrastinate_workers w ON w.id = p.worker_id WHERE j.id = :i"), {"i": job_id}).mappings().first()
    if row is None or row["job_id"] is None:
        return False
    if row["queue_status"] in ("failed", "succeeded", "cancelled", "aborted"):
        return True
    if row["queue_status"] == "doing":
        return row["last_heartbeat"] is None or row["silent_s"] > STALLED_AFTER_S
    return False


def jobs_of(engine, register, *, limit=20):
    """The register's import jobs, newest first, with ``interrupted`` set for those whose worker is gone."""
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(text(
            "SELECT j.id, j.status, j.step, j.progress, j.error, j.queued_at, j.started_at, j.finished_at, j.actor, "
            "j.import_id, u.original_name FROM import_jobs j LEFT JOIN register_uploads u ON u.id = j.upload_id "
            "WHERE j.register = :r ORDER BY j.id DESC LIMIT :n"), {"r": register, "n": limit}).mappings()]
        for row in rows:
            row["interrupted"] = row["status"] in ("queued", "running") and _interrupted(conn, row["id"])
            if row["interrupted"]:
                row["error"] = INTERRUPTED
    return rows


INTERRUPTED = ("The worker running this import stopped before it finished; the import was rolled back and nothing "
               "was changed. Start it again.")


def recover_stalled(settings=None, *, seconds_since_heartbeat=STALLED_AFTER_S):
    """procrastinate's stalled-job recovery for imports: jobs still 'doing' on a worker that has sent no heartbeat
    for ``seconds_since_heartbeat`` (killed, machine restarted) are marked failed in the queue, and their import
    jobs failed with what happened (PostgreSQL rolled the import's transaction back when the worker's connection
    died). They are not retried by themselves: a file that killed a worker would kill the next one; the officer
    starts the import again from the register page. Returns the import job ids marked failed."""
    import asyncio

    from procrastinate.jobs import Status

    settings = settings or load_settings()
    app = make_app(settings)

    async def recover():
        async with app.open_async():
            stalled = await app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=TASK,
                                                             seconds_since_heartbeat=seconds_since_heartbeat)
            for job in stalled:
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            return [job.id for job in stalled]

    queue_ids = asyncio.run(recover())
    if not queue_ids:
        return []
    from asset_map.store.db import get_engine

    with get_engine(settings).begin() as conn:
        failed = conn.execute(text(
            "UPDATE import_jobs SET status = 'failed', error = :e, finished_at = now() WHERE job_id = ANY(:q) "
            "AND status IN ('queued', 'running') AND finished_at IS NULL RETURNING id, register, actor"),
            {"e": INTERRUPTED, "q": queue_ids}).all()
        for job_id, register, actor in failed:
            audit.record(conn, actor=actor, action="import-failed", target=register,
                         details={"import_job": job_id, "error": INTERRUPTED, "recovered_by": "worker start"})
    log.warning("import worker: %d stalled import(s) marked failed: %s", len(failed), [f[0] for f in failed])
    return [f[0] for f in failed]


def work(settings=None, *, wait=True, concurrency=1, retry_after_s=5):
    """Run a worker on the import queue (``asset-map worker``): until stopped, or, ``wait=False``, until the queue
    is empty. When the database goes away the worker starts again once it is back (an import it was running was
    rolled back by PostgreSQL; its page says it was interrupted)."""
    import time

    settings = settings or load_settings()
    try:
        recover_stalled(settings)
    except Exception as err:  # noqa: BLE001 - an unreachable database: the loop below waits for it
        log.warning("import worker: stalled imports not checked (%s)", err)
    _warm(settings)
    while True:
        try:
            make_app(settings).run_worker(queues=[QUEUE], wait=wait, concurrency=concurrency,
                                          install_signal_handlers=wait)
            return
        except Exception as err:  # noqa: BLE001 - any failure of the queue's connection means: wait and retry
            if not wait:
                raise
            log.warning("import worker stopped (%s); starting again in %s s", err, retry_after_s)
            time.sleep(retry_after_s)


def _warm(settings):
    """Read the reference data an import needs (gazetteer, boundaries) into this process's caches before the first
    job: a worker lives long, so its imports need not pay for it (the caches notice a newer reference load)."""
    from asset_map.registers import edits
    from asset_map.store.db import get_engine

    try:
        edits._placed(get_engine(settings), {"name": "warm-up", "category": "library", "postcode": "ST16 2LP"},
                      settings)
    except Exception as err:  # noqa: BLE001 - an empty or unreachable database: the first job reads it instead
        log.info("import worker: reference data not read ahead (%s)", err)


def spawn_worker():
    """Start `asset-map worker` as a child process (for `asset-map serve`); returns the Popen."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("asset-map")
    cmd = [str(exe), "worker"] if exe.exists() else [sys.executable, "-c", "from asset_map.cli import cli; cli()",
                                                     "worker"]
    return subprocess.Popen(cmd, env=os.environ.copy())
