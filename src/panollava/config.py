"""Typed configuration: pydantic schema, strict YAML loading and dotted ``key=value`` overrides.

Every section forbids unknown keys; a typo gets an error that names the key, where it was and the
valid keys (with a "did you mean" hint). Data paths live in exactly one place: ``data``.
YAML is read safely and bounded: duplicate keys are errors (naming key and line), and a file
whose aliases expand to more than ``MAX_YAML_NODES`` values (an "alias bomb") is refused before
anything is expanded.

    cfg = load_config("configs/views/anyres_e2p.yaml", overrides=["views.fov_deg=60"])
    save_config(cfg, run_dir / "config.yaml")
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from panollava.data.schema import DataConfig, ImageConfig
from panollava.losses.schema import OverlapLossConfig
from panollava.models.adapters.schema import PanoAdaptConfig
from panollava.models.panollava.resamplers.schema import check_resampler_compatibility
from panollava.models.panollava.schema import PanoLLaVAConfig
from panollava.strict import StrictModel
from panollava.training.schema import TrainConfig
from panollava.views.schema import RING_STRATEGIES, ViewsConfig

__all__ = [
    "MAX_YAML_NODES",
    "ConfigError",
    "PanoConfig",
    "apply_overrides",
    "load_config",
    "save_config",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message says where and how to fix it."""


MAX_YAML_NODES = 100_000  # values after alias expansion; a real config has a few hundred


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and documents whose aliases expand to
    more than :data:`MAX_YAML_NODES` values (checked on the node graph, before expanding)."""

    def __init__(self, stream, source: str) -> None:
        super().__init__(stream)
        self.source = source

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def expanded(n) -> int:  # memoised on the shared (aliased) nodes: linear time
            if id(n) not in sizes:
                children = n.value if isinstance(n.value, list) else []
                flat = [
                    c for item in children for c in (item if isinstance(item, tuple) else (item,))
                ]
                sizes[id(n)] = min(1 + sum(expanded(c) for c in flat), MAX_YAML_NODES + 1)
            return sizes[id(n)]

        if expanded(node) > MAX_YAML_NODES:
            raise ConfigError(
                f"{self.source}: its YAML aliases expand to more than {MAX_YAML_NODES:,} values: "
                "refused as an alias bomb; write the values out"
            )
        return self.construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.source}: duplicate key {key!r} on line {line} (first on line "
                    f"{seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` with duplicate keys and alias bombs refused (:class:`ConfigError`)."""
    loader = _StrictLoader(text, source)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class PanoConfig(StrictModel):
    """The root config: one YAML describes data, views, model, training stages and evaluation."""

    experiment: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
        description="run folder name under output_dir (one folder: letters, digits, . _ + -)",
    )
    seed: int = Field(0, ge=0, lt=2**32, description="seed of every RNG (numpy takes < 2**32)")
    output_dir: Path = Path("runs")
    data: DataConfig = Field(default_factory=DataConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    model: Annotated[PanoLLaVAConfig | PanoAdaptConfig, Field(discriminator="system")] | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)
    overlap_loss: OverlapLossConfig = Field(default_factory=OverlapLossConfig)

    @model_validator(mode="after")
    def _overlap_needs_a_grid(self) -> PanoConfig:
        uses_overlap = any(s.overlap_weight > 0 for s in self.train.stages)
        model = self.model
        if (
            uses_overlap
            and isinstance(model, PanoLLaVAConfig)
            and model.overlap_features != "encoder"
        ):
            check_resampler_compatibility(
                model.resampler,
                needs_grid=True,
                reason="an overlap loss on model.overlap_features="
                f"'{model.overlap_features}' (set it to 'encoder' or use a grid resampler)",
            )
        return self

    @model_validator(mode="after")
    def _overlap_needs_overlapping_views(self) -> PanoConfig:
        if self.views.ring_overlap() > 0:
            return self
        for i, stage in enumerate(self.train.stages):
            if stage.overlap_weight > 0:
                raise ValueError(
                    f"train.stages.{i}.overlap_weight={stage.overlap_weight:g} needs views that "
                    f"overlap, but views.strategy '{self.views.strategy}' (fov_deg "
                    f"{self.views.fov_deg:g}, num_tiles {self.views.num_tiles}) gives none: set "
                    f"train.stages.{i}.overlap_weight=0 (lm_weight > 0 if it trains nothing "
                    f"else) or use tiles that overlap ({', '.join(RING_STRATEGIES)})"
                )
        return self

    @model_validator(mode="after")
    def _panorope_needs_pole_free_tiles(self) -> PanoConfig:
        if isinstance(self.model, PanoAdaptConfig) and self.model.panorope:
            problem = _panorope_views_problem(self.views)
            if problem:
                raise ValueError(f"model.panorope: {problem}; or set model.panorope: false")
        return self

    @model_validator(mode="after")
    def _panoadapt_trains_lora_only(self) -> PanoConfig:
        """``trainable`` / ``vision_trainable_blocks`` are PanoLLaVA settings: PanoAdapt would
        ignore them (it trains the stage's LoRA adapters only), so they are refused."""
        if not isinstance(self.model, PanoAdaptConfig):
            return self
        for i, stage in enumerate(self.train.stages):
            if stage.trainable:
                raise ValueError(
                    f"train.stages.{i}.trainable={stage.trainable}: PanoAdapt trains the "
                    "stage's LoRA adapters only (choose them with lora.targets); remove it"
                )
            if stage.vision_trainable_blocks != 0:
                raise ValueError(
                    f"train.stages.{i}.vision_trainable_blocks={stage.vision_trainable_blocks}: "
                    "PanoAdapt trains the stage's LoRA adapters only (vision LoRA: "
                    "lora.targets: [vision]); remove it"
                )
        return self

    @model_validator(mode="after")
    def _precision_fits_family(self) -> PanoConfig:
        """fp16 on a bf16-only PanoAdapt family is refused here, before any model loads."""
        if isinstance(self.model, PanoAdaptConfig):
            self.model.check_dtype(self.train.precision)
        return self


def _panorope_views_problem(views: ViewsConfig) -> str | None:
    """Why PanoRoPE cannot give these views monotone positions (None: it can).

    Same rule as ``panollava.positional.check_panorope_layout`` on the built layout: a gnomonic
    tile reaching a pole (``|pitch| + vfov/2 >= 90``) sees every longitude at once.
    """
    if views.strategy == "native":
        return "needs tiles, but views.strategy 'native' feeds the ERP as one image"
    if views.strategy == "cubemap" and views.cube_faces == 6:
        return "the U and D cube faces contain the poles (no monotone width); use cube_faces: 4"
    if views.strategy in ("e2p", "pinhole", "anyres_e2p"):
        vfov = views.vfov_deg or views.fov_deg
        for pitch in views.pitch_deg:
            if abs(pitch) + vfov / 2 >= 90.0:
                return (
                    f"a ring at pitch {pitch:g}° with vfov {vfov:g}° reaches the pole "
                    f"(|pitch| + vfov/2 = {abs(pitch) + vfov / 2:g}° >= 90°), where every "
                    "longitude meets; use |pitch| + vfov/2 < 90"
                )
    return None


# --------------------------------------------------------------------------- loading and errors


def _union_members(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel members of a (possibly Annotated / Optional) union annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return _union_members(args[0])
    return [m for a in args for m in _union_members(a)]


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    """Discriminator values of a union member (its ``system: Literal[...]`` field)."""
    field = model.model_fields.get("system")
    return typing.get_args(field.annotation) if field is not None else ()


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, list[str]]:
    """Follow ``loc`` through nested models (discriminated unions included).

    Returns the model reached (None if ``loc`` leaves the schema) and the user-facing path
    (discriminator tags such as ``panoadapt`` dropped).
    """
    current: Any = model
    path: list[str] = []
    parts = list(loc)
    while parts:
        part = str(parts.pop(0))
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            path.append(part)
            if field is None:
                return None, path + [str(p) for p in parts]
            current = field.annotation
            continue
        tagged = [m for m in _union_members(current) if part in _tags(m)]
        if tagged:
            current = tagged[0]
            continue
        return None, [*path, part, *map(str, parts)]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current, path
    members = _union_members(current)
    return (members[0] if len(members) == 1 else None), path


def _format_errors(exc: ValidationError, root: type[BaseModel], source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        _, shown = _walk(root, loc)
        dotted = ".".join(shown) or "<root>"
        if err["type"] == "extra_forbid" or err["type"] == "extra_forbidden":
            parent, parent_path = _walk(root, loc[:-1])
            valid = sorted(parent.model_fields) if parent else []
            hint = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            msg = f"  unknown key '{dotted}'"
            if hint:
                msg += f" (did you mean '{'.'.join([*parent_path, hint[0]])}'?)"
            msg += f"; valid keys here: {', '.join(valid)}"
            lines.append(msg)
        else:
            lines.append(f"  {dotted}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, raw = item.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override '{item}' has an empty key")
    return key.strip().split("."), _load_yaml(raw, f"override {item!r}") if raw.strip() else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted ``a.b.c=value`` overrides applied (values parsed as YAML)."""
    result = _deep_copy(raw)
    for item in overrides or []:
        keys, value = _parse_override(item)
        node: Any = result
        for k in keys[:-1]:
            node = _child(node, k, item)
        _set(node, keys[-1], value, item)
    return result


def _index(node: list, key: str, item: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"override '{item}': '{key}' is not an index of a {len(node)}-item list")
    return int(key)


def _child(node: Any, key: str, item: str) -> Any:
    """The section ``key`` of ``node`` (dict key or list index), created when missing."""
    if isinstance(node, list):
        child = node[_index(node, key, item)]
    else:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
    if not isinstance(child, dict | list):
        raise ConfigError(f"override '{item}': '{key}' is a value, not a section")
    return child


def _set(node: Any, key: str, value: Any, item: str) -> None:
    if isinstance(node, list):
        node[_index(node, key, item)] = value
    else:
        node[key] = value


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


_DATA_PATHS = ("train", "valid", "test", "image_root", "cache_dir")  # the path keys of `data`


def _resolve_paths(data: Any, base: Path) -> Any:
    """The raw ``data`` mapping with its relative paths made absolute against ``base``."""
    if not isinstance(data, dict):
        return data

    def fix(p: Any) -> Any:
        if not isinstance(p, str | Path):
            return p  # left for validation to refuse
        p = Path(p)
        return str(p if p.is_absolute() else (base / p).resolve())

    out = dict(data)
    for key in _DATA_PATHS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [fix(p) for p in value]
        elif value is not None:
            out[key] = fix(value)
    return out


def config_from_dict(
    raw: dict[str, Any], *, source: str = "<dict>", schema: type[PanoConfig] = PanoConfig
) -> PanoConfig:
    """Validate a plain dict against the schema, raising :class:`ConfigError` with a clear message."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, schema, source)) from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    schema: type[PanoConfig] = PanoConfig,
) -> PanoConfig:
    """Load a YAML config (or defaults when ``path`` is None), apply overrides, validate.

    Relative paths in ``data`` resolve against the YAML file's folder (so configs are portable);
    relative paths given as overrides resolve against the working directory.
    """
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = _load_yaml(path.read_text(encoding="utf-8"), str(path))
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r});"
                f" convert it, e.g. `iconv -f latin1 -t utf-8 {path} > fixed.yaml`"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path} must contain a mapping at the top level")
        raw = loaded or {}
        if "data" in raw:
            raw["data"] = _resolve_paths(raw["data"], path.resolve().parent)
    raw = apply_overrides(raw, overrides)
    if "data" in raw:  # paths typed on the command line: relative to where it runs
        raw["data"] = _resolve_paths(raw["data"], Path.cwd())
    return config_from_dict(raw, source=source, schema=schema)


def config_to_yaml(cfg: BaseModel) -> str:
    """The resolved config as YAML (paths as strings)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(cfg: BaseModel, path: str | Path) -> Path:
    """Write the resolved config to ``path`` (used for every run folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_to_yaml(cfg), encoding="utf-8")
    return path
