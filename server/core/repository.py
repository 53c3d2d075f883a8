"""The model repository: Triton's layout on disk, and the models loaded from it.

    <repo>/<model>/config.pbtxt | config.json      (optional: completed from the engine)
    <repo>/<model>/<version>/model.plan | model.onnx

Loading builds every version the version policy selects, in a worker thread, with one engine
copy per device its instance groups name, and runs its ``model_warmup`` samples on every
execution context before the version is installed (and so reported ready). A version that
fails (a GPU index that does not exist, a warmup sample that fails, say) is UNAVAILABLE with
its reason and the others serve; a reload that fails entirely leaves the versions already
serving untouched. Uploads are staged in a hidden directory, built, and only then moved into
the repository.

An ensemble (``platform: "ensemble"``) has no model file; its version directories may be
empty, or absent (version 1). Loading one first loads the models its steps name that serve
no version yet, as Triton's explicit load does, then binds it to them
(``server.core.ensemble``): it loads only if every step is served and consistent. It serves
while that stays so: ``get`` and the index check it on every call, so unloading a step's
model makes the ensemble UNAVAILABLE, naming that step, until the model is loaded again.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine as trt
from server.core.build import (
    MODEL_FILES,
    batch_capacity,
    complete_config,
    device_type_for,
    engines_for,
    model_file,
)
from server.core.config import (
    InstanceGroup,
    ModelConfig,
    config_from_json_text,
    config_from_pbtxt,
)
from server.core.devices import Device, place_instance_groups
from server.core.ensemble import EnsembleVersion, Servable
from server.core.ensemble_graph import LATEST
from server.core.errors import InvalidArgument, NotFound, ServerError, Unavailable
from server.core.model import ModelVersion
from server.core.repository_layout import (
    check_model_file_path,
    check_model_name,
    is_model_name,
    read_config_text,
    repository_signature,
    version_numbers,
    write_atomically,
)
from server.core.response_cache import ResponseCache
from server.core.warmup import check_warmup, warmup_feeds

log = logging.getLogger("server.repository")
STAGING = ".staging"
MODEL_LEVEL = 0  # the key of a failure that concerns the whole model (versions start at 1)


@dataclass
class VersionState:
    state: str  # READY, UNAVAILABLE, LOADING, UNLOADING
    reason: str = ""


@dataclass
class ModelEntry:
    versions: dict[int, Servable] = field(default_factory=dict)
    states: dict[int, VersionState] = field(default_factory=dict)
    signature: tuple[Any, ...] = ()
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ModelRepository:
    def __init__(self, root: Path, device: str, cache_dir: Path | None,
                 default_queue_size: int, devices: list[Device],
                 build_isolation: str = "gpu",
                 response_cache: ResponseCache | None = None) -> None:
        self.root = root
        self.response_cache = response_cache  # shared by the models that enable caching
        self.build_isolation = build_isolation  # see server.core.build.BUILD_ISOLATION
        self.device = device
        self.devices = devices  # what KIND_GPU instance groups' gpus index
        self.cache_dir = cache_dir
        self.default_queue_size = default_queue_size
        self.models: dict[str, ModelEntry] = {}

    # -- queries ------------------------------------------------------------------------------
    def names_on_disk(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and is_model_name(p.name))

    def index(self, ready_only: bool) -> list[dict[str, str]]:
        out = []
        for name in sorted(set(self.names_on_disk()) | set(self.models)):
            entry = self.models.get(name)
            if entry is None or not entry.states:
                if not ready_only:
                    out.append({"name": name})
                continue
            for version, status in sorted(entry.states.items()):
                state, reason = status.state, status.reason
                model = entry.versions.get(version)
                if state == "READY" and isinstance(model, EnsembleVersion):
                    try:
                        model.bind()
                    except ServerError as exc:
                        state, reason = "UNAVAILABLE", str(exc)
                if ready_only and state != "READY":
                    continue
                row = {"name": name, "version": str(version), "state": state,
                       "reason": reason}
                if version == MODEL_LEVEL:
                    del row["version"]
                out.append(row)
        return out

    def get(self, name: str, version: str | None = None) -> Servable:
        """The ready version asked for, or the highest ready version; an ensemble's only
        while the models of its steps serve it."""
        model = self._find(name, version)
        if isinstance(model, EnsembleVersion):
            model.bind()
        return model

    def _find(self, name: str, version: str | None = None) -> Servable:
        entry = self.models.get(name)
        if entry is None and name in self.names_on_disk():
            raise Unavailable(f"model '{name}' is not loaded")
        if entry is None:
            raise NotFound(f"unknown model '{name}'; known models: "
                           f"{sorted(set(self.models) | set(self.names_on_disk()))}")
        if version is not None and version != "":
            if not version.isdigit():
                raise InvalidArgument(f"model '{name}': version {version!r} is not a number")
            number = int(version)
            if number in entry.versions:
                return entry.versions[number]
            status = entry.states.get(number)
            if status is None:
                raise NotFound(f"model '{name}' has no version {version}; versions: "
                               f"{sorted(entry.states)}")
            raise Unavailable(f"model '{name}' version {version} is {status.state}"
                              f"{': ' + status.reason if status.reason else ''}")
        if entry.versions:
            return entry.versions[max(entry.versions)]
        reasons = "; ".join(f"{_version_label(v)}{s.state} {s.reason}".strip()
                            for v, s in sorted(entry.states.items()))
        raise Unavailable(f"model '{name}' is not ready ({reasons or 'not loaded'})")

    def ready_versions(self, name: str) -> list[str]:
        return [str(v) for v in sorted(self.models[name].versions)]

    def all_statistics(self) -> list[Any]:
        return [mv.stats for entry in list(self.models.values())
                for mv in list(entry.versions.values())]

    def _step_model(self, name: str, version: int) -> Servable:
        """What an ensemble's step runs on (the ensemble binds a nested ensemble itself)."""
        return self._find(name, None if version == LATEST else str(version))

    # -- loading ----------------------------------------------------------------------------
    def _entry(self, name: str) -> ModelEntry:
        return self.models.setdefault(name, ModelEntry())

    async def load(self, name: str, config_text: str | None = None,
                   files: dict[str, bytes] | None = None) -> None:
        """Load (or reload) ``name``; with ``files`` (``<version>/model.onnx`` -> bytes) the
        model is built from them and, once it loads, they are written to the repository.
        An ensemble's step models that serve no version yet are loaded first."""
        await self._load(name, config_text, files, ())

    async def _load(self, name: str, config_text: str | None, files: dict[str, bytes] | None,
                    chain: tuple[str, ...]) -> None:
        """``chain``: the ensembles whose loading loads this model."""
        check_model_name(name)
        if files is not None and config_text is None:
            raise InvalidArgument("loading a model from files needs its 'config' as well")
        model_dir = self.root / name
        if files is None and not model_dir.is_dir():
            raise NotFound(f"model '{name}' is not in the repository {self.root}")
        loop = asyncio.get_running_loop()
        if files is None:
            # Before taking this model's lock: a step that (wrongly) leads back here must
            # not wait for it.
            await self._load_steps(name, model_dir, config_text, chain)
        entry = self._entry(name)
        async with entry.lock:
            if files is None:
                built = await loop.run_in_executor(None, self._build_all, name, model_dir,
                                                   config_text)
            else:
                parsed = {check_model_file_path(p): data for p, data in files.items()}
                built = await loop.run_in_executor(None, self._build_staged, name,
                                                   config_text, parsed)
            for version, model in built[0].items():
                if isinstance(model, EnsembleVersion):
                    try:
                        model.bind(chain)
                    except ServerError as exc:
                        built[0][version] = str(exc)
            self._install(name, entry, *built)

    async def _load_steps(self, name: str, model_dir: Path, config_text: str | None,
                          chain: tuple[str, ...]) -> None:
        """If ``name`` is an ensemble, load the models of its steps that serve no version
        yet. A step model that cannot be loaded is left with its reason, which binding the
        ensemble then reports."""
        loop = asyncio.get_running_loop()
        try:
            config, _ = await loop.run_in_executor(None, self._read_config, name, model_dir,
                                                   config_text)
        except ServerError:
            return  # building the model reports it
        if config.ensemble_scheduling is None:
            return
        chain = (*chain, name)
        on_disk = self.names_on_disk()
        for step in dict.fromkeys(s.model_name for s in config.ensemble_scheduling.steps):
            entry = self.models.get(step)
            if step in chain or step not in on_disk or (entry is not None and entry.versions):
                continue  # a cycle or an unknown model: binding names it
            try:
                await self._load(step, None, None, chain)
            except ServerError:
                pass

    async def upload(self, name: str, filename: str, data: bytes,
                     config_text: str | None) -> int:
        """Add ``data`` as a new version of ``name`` (created if new); returns the version.
        Nothing in the repository changes unless the new version builds."""
        check_model_name(name)
        if filename not in MODEL_FILES:
            raise InvalidArgument(f"invalid file name {filename!r}: expected one of "
                                  f"{sorted(MODEL_FILES)}")
        entry = self._entry(name)
        async with entry.lock:
            existing = version_numbers(self.root / name)
            version = max([*existing, *entry.versions, 0]) + 1
            if config_text is None:
                config_text = read_config_text(self.root / name)
            loop = asyncio.get_running_loop()
            built, signature = await loop.run_in_executor(
                None, self._build_staged, name, config_text, {(version, filename): data})
            new = built[version]
            if isinstance(new, str):
                # Refused: nothing was written and nothing is recorded; what serves, serves.
                raise InvalidArgument(f"upload of model '{name}' refused: {new}")
            policy = new.config.version_policy
            for kept in policy.select([*entry.versions, version]):
                if kept != version:
                    built[kept] = entry.versions[kept]
            self._install(name, entry, built, signature)
            return version

    async def unload(self, name: str) -> None:
        check_model_name(name)
        entry = self.models.get(name)
        if entry is None:
            if name in self.names_on_disk():
                return
            raise NotFound(f"unknown model '{name}'")
        async with entry.lock:
            for version, model in list(entry.versions.items()):
                model.close()
                entry.states[version] = VersionState("UNAVAILABLE", "unloaded")
            entry.versions.clear()

    def _install(self, name: str, entry: ModelEntry, built: dict[int, Servable | str],
                 signature: tuple[Any, ...]) -> None:
        """Swap built versions in (on the event loop); raise if none could be built."""
        ready = {v: m for v, m in built.items() if not isinstance(m, str)}
        failed = {v: m for v, m in built.items() if isinstance(m, str)}
        for version, reason in failed.items():
            if version not in entry.versions:
                entry.states[version] = VersionState("UNAVAILABLE", reason)
        if ready:
            entry.states.pop(MODEL_LEVEL, None)
        if not ready:
            reasons = "; ".join(f"{_version_label(v)}{r}" for v, r in sorted(failed.items()))
            raise InvalidArgument(f"failed to load model '{name}': {reasons}")
        for version in list(entry.versions):
            if version not in ready and version not in failed:
                entry.versions.pop(version).close()
                entry.states[version] = VersionState("UNAVAILABLE", "unloaded")
        for version, model in ready.items():
            old = entry.versions.get(version)
            entry.versions[version] = model
            entry.states[version] = VersionState("READY")
            if old is not None and old is not model:
                old.close()
        entry.signature = signature

    def _build_all(self, name: str, model_dir: Path, config_text: str | None
                   ) -> tuple[dict[int, Servable | str], tuple[Any, ...]]:
        """Build the versions of a model directory (blocking)."""
        signature = repository_signature(model_dir)
        try:
            config, autocomplete = self._read_config(name, model_dir, config_text)
            available = version_numbers(model_dir)
            if not available and config.ensemble_scheduling is not None:
                available = [1]  # an ensemble's version directories hold nothing
            if not available:
                raise InvalidArgument(f"model '{name}' has no version directories")
            selected = config.version_policy.select(available)
            if not selected:
                raise InvalidArgument(f"model '{name}': the version policy selects none of "
                                      f"the versions {available}")
        except ServerError as exc:
            return {MODEL_LEVEL: str(exc)}, signature
        built: dict[int, Servable | str] = {}
        for version in selected:
            if config.ensemble_scheduling is not None:
                self._warn_without_cache(config)
                built[version] = EnsembleVersion(config, version, self._step_model,
                                                 self.response_cache)
            else:
                built[version] = self._build_version(config, autocomplete, model_dir, version)
        return built, signature

    def _build_staged(self, name: str, config_text: str | None,
                      files: dict[tuple[int, str], bytes]
                      ) -> tuple[dict[int, Servable | str], tuple[Any, ...]]:
        """Write ``files`` to a staging directory, build them, and move what built into the
        repository (blocking)."""
        staging_root = self.root / STAGING
        staging_root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging_root))
        try:
            for (version, filename), data in files.items():
                (stage / str(version)).mkdir(exist_ok=True)
                (stage / str(version) / filename).write_bytes(data)
            try:
                config, autocomplete = self._read_config(name, stage, config_text)
                if config.ensemble_scheduling is not None:
                    raise InvalidArgument(f"model '{name}' is an ensemble: it takes no model "
                                          f"files")
            except ServerError as exc:
                return {v: str(exc) for v, _ in files}, ()
            # Warmup data files are read from the repository's model directory.
            built: dict[int, Servable | str] = {
                version: self._build_version(config, autocomplete, self.root / name, version,
                                             stage / str(version))
                for version, _ in files}
            if any(not isinstance(m, str) for m in built.values()):
                model_dir = self.root / name
                model_dir.mkdir(exist_ok=True)
                if config_text is not None:
                    write_atomically(model_dir / "config.json", config_text.encode())
                    (model_dir / "config.pbtxt").unlink(missing_ok=True)
                for (version, filename), data in files.items():
                    if not isinstance(built[version], str):
                        target = model_dir / str(version)
                        target.mkdir(exist_ok=True)
                        for other in MODEL_FILES:
                            (target / other).unlink(missing_ok=True)
                        write_atomically(target / filename, data)
            return built, repository_signature(self.root / name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _read_config(self, name: str, model_dir: Path, config_text: str | None
                     ) -> tuple[ModelConfig, bool]:
        if config_text is not None:
            return config_from_json_text(config_text, name), False
        if (model_dir / "config.pbtxt").is_file():
            return config_from_pbtxt((model_dir / "config.pbtxt").read_text(), name), False
        if (model_dir / "config.json").is_file():
            return config_from_json_text((model_dir / "config.json").read_bytes(), name), False
        return ModelConfig(name=name), True

    def _build_version(self, config: ModelConfig, autocomplete: bool, model_dir: Path,
                       version: int, version_dir: Path | None = None) -> ModelVersion | str:
        """A loaded and warmed-up version, or the reason it could not be loaded;
        ``version_dir`` (default ``model_dir/<version>``) holds the model file."""
        version_dir = version_dir or model_dir / str(version)
        try:
            default_kind = ("KIND_GPU" if device_type_for("KIND_AUTO", self.device)
                            == trt.DeviceType.GPU else "KIND_CPU")
            groups = config.instance_groups or (InstanceGroup(f"{config.name}_0"),)
            placements = place_instance_groups(groups, default_kind, self.devices)
            path = model_file(version_dir, config)
            engines, platform = engines_for(path, config, [p.device for p in placements],
                                            self.cache_dir, autocomplete,
                                            self.build_isolation)
            first = engines[placements[0].device]
            complete = complete_config(config, first, batch_capacity(first), platform)
            check_warmup(complete, f"model '{config.name}' configuration")
            samples = [(sample, warmup_feeds(complete, sample, model_dir))
                       for sample in complete.model_warmup]
            model = ModelVersion(complete, version, [(p, engines[p.device]) for p in placements],
                                 self.default_queue_size, self.response_cache)
            self._warn_without_cache(complete)
            try:
                model.warm_up(samples)
            except ServerError:
                model.close()
                raise
            return model
        except ServerError as exc:
            return str(exc)
        except (OSError, trt.EngineError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _warn_without_cache(self, config: ModelConfig) -> None:
        if config.response_cache and self.response_cache is None:
            log.warning("model '%s' enables response_cache, but the server has no response "
                        "cache (--cache-config local,size=<bytes>): it is not cached",
                        config.name)


def _version_label(version: int) -> str:
    """How a reason is prefixed: by its version, unless it concerns the whole model."""
    return "" if version == MODEL_LEVEL else f"version {version}: "
