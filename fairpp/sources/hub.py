"""Download the published Fair-PP dataset from the Hugging Face hub and load it into the store.

The only module of :mod:`fairpp.sources` that touches the network. ``HF_ENDPOINT`` (a mirror or a
local hub) and ``HF_TOKEN`` (private or gated repos) are read from the environment at each call and
passed to huggingface_hub explicitly, because huggingface_hub reads ``HF_ENDPOINT`` once, at import.

An offline or unreachable hub fails fast with :class:`~fairpp.schema.LoadError`: the download runs
in a daemon thread, and the hub must answer the repo look-up and the file listing within the
timeout (``FAIRPP_HUB_TIMEOUT``, 8 s by default). Once it has, the files themselves download under
huggingface_hub's own per-request timeouts, so a large file on a slow link is not cut off.

Examples
--------
>>> from fairpp.sources.hub import DATASET_REPO, SIMULATION_REPO
>>> DATASET_REPO, SIMULATION_REPO
('tools-o/Fair-PP', 'tools-o/Fair-PP-simulation')
"""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from fairpp.config import settings
from fairpp.schema import Batch, LoadError

if TYPE_CHECKING:
    from fairpp.store import Store

__all__ = ["DATASET_REPO", "SIMULATION_REPO", "DEFAULT_ENDPOINT", "DATA_PATTERNS", "HubFiles", "fetch",
           "fetch_simulation", "load_from_hub"]

log = logging.getLogger(__name__)

#: The published dataset (train and test splits).
DATASET_REPO = "tools-o/Fair-PP"
#: The scenario (vignette) variant of the dataset, loaded on top of the main one.
SIMULATION_REPO = "tools-o/Fair-PP-simulation"
#: The hub used when ``HF_ENDPOINT`` is not set.
DEFAULT_ENDPOINT = "https://huggingface.co"
#: The repo files that are downloaded: the data files, nothing else.
DATA_PATTERNS = ("*.csv", "*.parquet", "*.tsv")

_SUFFIXES = {".csv", ".parquet", ".tsv"}
_ELSEWHERE = ("Or download the files by other means (a browser, `git clone`) and run "
              "`fairpp load FILE [FILE...]`.")


class HubFiles(list[Path]):
    """Local paths of a dataset repo's data files (train before test), with the simulation files apart.

    The list itself holds the main dataset's files, to be read together (train + test);
    :attr:`simulation` holds the files of :data:`SIMULATION_REPO` (empty unless asked for).

    >>> files = HubFiles([Path("train.csv"), Path("test.parquet")])
    >>> [p.name for p in files], files.simulation
    (['train.csv', 'test.parquet'], [])
    """

    def __init__(self, files: Iterable[Path] = (), *, simulation: Iterable[Path] = ()) -> None:
        super().__init__(files)
        self.simulation: list[Path] = list(simulation)


def fetch(*, repo: str = DATASET_REPO, simulation: bool = False, cache_dir: str | Path | None = None,
          timeout: float | None = None) -> HubFiles:
    """Download the data files of a dataset repo (and, optionally, of the simulation repo).

    Parameters
    ----------
    repo : the dataset repo, ``OWNER/NAME``.
    simulation : also download :data:`SIMULATION_REPO`; its files come back in ``.simulation``.
    cache_dir : huggingface_hub's cache folder; ``None`` uses its default (``HF_HUB_CACHE``).
    timeout : seconds the hub has to answer the repo look-up and listing; ``None`` uses
        ``settings().hub_timeout`` (``FAIRPP_HUB_TIMEOUT``, 8 s).

    Returns
    -------
    HubFiles
        The local paths of the CSV / Parquet / TSV files, train before test, then by path.

    Raises
    ------
    LoadError
        The hub cannot be reached in time (and nothing is cached), the repo is unknown or needs a
        token, or it holds no data files. The message says which, and how to load downloaded files instead.

    Notes
    -----
    When the hub cannot be reached but huggingface_hub's cache holds a complete earlier download of
    the repo, that copy is used (with a logged warning) instead of failing.

    Examples
    --------
    >>> fetch(repo="not a repo id", timeout=1)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    fairpp.schema.LoadError: 'not a repo id' is not a valid hub repo id ...
    """
    wait = _timeout(timeout)
    files = HubFiles(_download(repo, cache_dir=cache_dir, timeout=wait))
    if simulation:
        files.simulation = _download(SIMULATION_REPO, cache_dir=cache_dir, timeout=wait)
    return files


def fetch_simulation(*, repo: str = SIMULATION_REPO, cache_dir: str | Path | None = None,
                     timeout: float | None = None) -> list[Path]:
    """Download only the simulation repo's data files; options as in :func:`fetch`.

    >>> callable(fetch_simulation)
    True
    """
    return _download(repo, cache_dir=cache_dir, timeout=_timeout(timeout))


def load_from_hub(store: "Store", *, repo: str = DATASET_REPO, simulation: bool = False, append: bool = False,
                  cache_dir: str | Path | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Download the published dataset and load it into ``store``.

    Everything is downloaded and read before the store is touched, so a failed download or a
    malformed file leaves the store as it was. The simulation files, if asked for, are loaded after
    the main dataset with ``append=True``.

    Parameters
    ----------
    store : the :class:`fairpp.store.Store` to load into.
    repo, simulation, cache_dir, timeout : as in :func:`fetch`.
    append : add to the loaded dataset instead of replacing it.

    Returns
    -------
    dict
        The store's load report (``source_id``, ``questions``, ``respondents``, ``answers``,
        ``rows_read``, ``rows_rejected``). With the simulation files, the counts are totals and the two
        reports are under ``"dataset"`` and ``"simulation"``.

    Examples
    --------
    >>> from fairpp.store import Store
    >>> load_from_hub(Store(":memory:"), repo="not a repo id")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    fairpp.schema.LoadError: 'not a repo id' is not a valid hub repo id ...
    """
    from fairpp.sources.files import read_files

    files = fetch(repo=repo, simulation=simulation, cache_dir=cache_dir, timeout=timeout)
    batch = read_files(files, kind="hub")
    batch.source["label"] = f"Fair-PP published dataset ({repo})"
    sim = None
    if files.simulation:
        sim = read_files(files.simulation, kind="hub")
        sim.source["label"] = f"Fair-PP simulation ({SIMULATION_REPO})"
        _check_overlap(batch, sim)
    report = store.load(batch, append=append)
    if sim is None:
        return report
    try:
        sim_report = store.load(sim, append=True)
    except LoadError as exc:
        raise LoadError(f"{repo} was loaded, but the simulation files of {SIMULATION_REPO} were not: {exc}") from exc
    counts = ("questions", "answers", "rows_read", "rows_rejected")
    total = {k: (report[k] or 0) + (sim_report[k] or 0) for k in counts}
    respondents = set(batch.respondents["respondent"]) | set(sim.respondents["respondent"])
    return {**report, **total, "respondents": len(respondents), "dataset": report, "simulation": sim_report}


# -- the download ----------------------------------------------------------------------------------


def _timeout(timeout: float | None) -> float:
    value = settings().hub_timeout if timeout is None else float(timeout)
    if not value > 0:
        raise LoadError(f"timeout={timeout!r}: give a positive number of seconds (FAIRPP_HUB_TIMEOUT for the default).")
    return value


def _download(repo: str, *, cache_dir: str | Path | None, timeout: float) -> list[Path]:
    """Run ``snapshot_download`` in a daemon thread; give up if the hub has not answered in ``timeout``."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
    token = (os.environ.get("HF_TOKEN") or "").strip() or None
    answered, listed, done = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    class Progress(tqdm):  # type: ignore[misc, type-arg]
        """Silent progress bars; huggingface_hub creates the first one once the hub has listed the files."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            listed.set()
            answered.set()
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    def work() -> None:
        try:
            outcome["folder"] = snapshot_download(
                repo, repo_type="dataset", endpoint=endpoint, token=token, cache_dir=cache_dir,
                allow_patterns=list(DATA_PATTERNS), etag_timeout=timeout, tqdm_class=Progress)
        except Exception as exc:  # handed over to the caller's thread below, which translates or re-raises it
            outcome["error"] = exc
        finally:
            done.set()
            answered.set()

    log.info("fetching dataset repo %s from %s (token: %s)", repo, endpoint, "yes" if token else "no")
    threading.Thread(target=work, name=f"fairpp-hub-{repo}", daemon=True).start()
    if not answered.wait(timeout):
        log.warning("no answer from %s within %g s; leaving the download thread behind", endpoint, timeout)
        raise LoadError(f"cannot reach {endpoint}: no answer within {timeout:g} s (offline, or a firewall drops "
                        f"the connection). Check the network, HF_ENDPOINT and FAIRPP_HUB_TIMEOUT. {_ELSEWHERE}")
    done.wait()
    if "error" in outcome:
        error = outcome["error"]
        translated = _explain(error, repo=repo, endpoint=endpoint)
        if translated is None:
            raise error
        raise translated from error
    folder = Path(outcome["folder"])
    if not listed.is_set():
        log.warning("could not list %s on %s; using the copy cached in %s", repo, endpoint, folder)
    files = _data_files(folder)
    if not files:
        raise LoadError(f"the dataset repo {repo} on {endpoint} has no CSV or Parquet files. Check the repo name "
                        f"(the published dataset is {DATASET_REPO}). {_ELSEWHERE}")
    log.info("fetched %d file(s) of %s: %s", len(files), repo, ", ".join(p.name for p in files))
    return files


def _data_files(folder: Path) -> list[Path]:
    """The data files under a snapshot folder (links into the blob cache keep their names): train first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]

    def order(p: Path) -> tuple[int, str]:
        rel = p.relative_to(folder).as_posix()
        low = rel.lower()
        return (0 if "train" in low else 2 if "test" in low else 1), rel

    return sorted(found, key=order)


def _explain(error: BaseException, *, repo: str, endpoint: str) -> LoadError | None:
    """Turn huggingface_hub's and the transport's errors into a LoadError that says what to do."""
    import httpx2
    from huggingface_hub import errors as hf

    chain = _chain(error)
    for e in chain:
        if isinstance(e, hf.HFValidationError):
            return LoadError(f"{repo!r} is not a valid hub repo id ({_short(e)}). Give it as OWNER/NAME, "
                             f"for example {DATASET_REPO}.")
    for e in chain:
        status = _status(e)
        if isinstance(e, (hf.RepositoryNotFoundError, hf.GatedRepoError)) or status in (401, 403, 404):
            return LoadError(
                f"the dataset repo {repo} was not found on {endpoint}, or it needs a token (HTTP {status}). "
                f"Check the name (the published dataset is {DATASET_REPO}); for a private or gated repo set "
                f"HF_TOKEN to an access token that can read it. {_ELSEWHERE}")
    for e in chain:
        if isinstance(e, hf.OfflineModeIsEnabled):
            return LoadError(f"cannot reach {endpoint}: HF_HUB_OFFLINE is set. Unset it to download. {_ELSEWHERE}")
        if isinstance(e, httpx2.TransportError):
            return LoadError(f"cannot reach {endpoint}: {_short(e)}. Check the network and HF_ENDPOINT. {_ELSEWHERE}")
        if isinstance(e, hf.HfHubHTTPError) and _status(e) is not None:
            return LoadError(f"cannot reach {endpoint}: the hub answered HTTP {_status(e)} for {repo}. Try again "
                             f"later. {_ELSEWHERE}")
    for e in chain:
        if isinstance(e, hf.FileMetadataError):
            return LoadError(f"cannot download {repo} from {endpoint}: {_short(e)}. Check that HF_ENDPOINT points "
                             f"at a Hugging Face hub. {_ELSEWHERE}")
        if isinstance(e, OSError):
            return LoadError(f"cannot download {repo} from {endpoint}: {_short(e)}. {_ELSEWHERE}")
    return None


def _chain(error: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _short(error: BaseException) -> str:
    """The first line of an error, without the ``[Errno N]`` prefix, at most 160 characters."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text if len(text) <= 160 else text[:157] + "..."


def _check_overlap(dataset: Batch, simulation: Batch) -> None:
    """Refuse, before anything is stored, simulation answers that repeat the main dataset's."""
    key = ["question_id", "respondent"]
    both = dataset.answers[key].merge(simulation.answers[key], on=key)
    if not both.empty:
        first = both.iloc[0]
        raise LoadError(
            f"the simulation files of {SIMULATION_REPO} repeat {len(both)} answer(s) of the main dataset (for "
            f"example respondent {first['respondent']!r} on question {first['question_id']}), so they read as "
            "the same questions. Nothing was loaded. Load the main dataset without --simulation.")
