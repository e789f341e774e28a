"""Model paths and layouts: `models`, `multi_model_reloading`, the older `model`, local folders
checked for Cortex's layout."""

from __future__ import annotations

import os
from pathlib import Path

from cortex_serve.contract import DEFAULT_MODEL_NAME, is_version_folder

from .. import schema
from ..project_files import hidden_in_model
from ..spec import ModelRef, ModelsSpec
from .reader import ReaderBase
from .reporting import show
from .walk import Located


def model_layout_problem(path: Path, ptype: str) -> str | None:
    """What is wrong with a local model's layout for its predictor type, or None.

    TensorFlow: a SavedModel folder (saved_model.pb inside), or integer version folders each
    holding one. ONNX: a .onnx file, a folder holding one, or integer version folders each
    holding one. Unversioned is version 1, as at runtime (cortex_serve/models.py).
    """
    if ptype == "tensorflow":
        layout = (
            "expected a SavedModel folder holding saved_model.pb (version 1), or integer version "
            "folders (1/, 2/, ...) each holding saved_model.pb"
        )
    else:
        layout = (
            "expected a .onnx file or a folder holding one (version 1), or integer version "
            "folders (1/, 2/, ...) each holding one .onnx file"
        )
    if path.is_file():
        if ptype == "onnx" and path.suffix == ".onnx":
            return None
        kind = "a SavedModel folder" if ptype == "tensorflow" else "a .onnx file or a folder"
        return f"invalid {ptype} model: must be {kind} (got the file {path.name}); {layout}"
    versions = sorted(
        (int(child.name), child)
        for child in path.iterdir()
        if child.is_dir() and is_version_folder(child.name)
    )
    folders = [child for _, child in versions] or [path]
    for folder in folders:
        label = f"version folder {folder.name}" if versions else "the folder"
        if ptype == "tensorflow":
            if not (folder / "saved_model.pb").is_file():
                return f"invalid tensorflow model: {label} holds no saved_model.pb; {layout}"
        else:
            found = sorted(child.name for child in folder.glob("*.onnx") if child.is_file())
            if len(found) != 1:
                listed = ", ".join(found) or "none"
                return (
                    f"invalid onnx model: {label} must hold exactly one .onnx file (found "
                    f"{listed}); {layout}"
                )
    return None


class ModelReading(ReaderBase):
    def _models(self, ptype: str | None, interface: str | None) -> ModelsSpec | None:
        given = {t: loc for t, loc in self.values.items() if t.startswith("predictor.models")}
        if not given:
            if ptype in ("tensorflow", "onnx") and interface == "class":
                self.missing(
                    "predictor.models",
                    f"must be provided for type: {ptype} (the model to serve: path, paths or dir)",
                )
            return None
        if ptype is None:
            return None
        section = given.get("predictor.models")
        written_section = section.written if section else None
        old_model = self.values.get("predictor.models.path")
        if ptype == "python" and interface == "class":
            if old_model is not None and old_model.written == "predictor.model":
                self.error_at(
                    old_model,
                    "not supported for type: python (use multi_model_reloading)",
                )
                return None
            if section is not None and written_section == "predictor.models":
                # v0.23-v0.24 python predictors named their models `models`
                self.note(
                    section.line,
                    section.written,
                    "read as multi_model_reloading for type: python (its name since v0.25)",
                )
        if ptype == "python" and interface == "functions" and section is not None:
            self.error(
                section.line, section.written, "not supported in a kind: api predictor (use model)"
            )
            return None
        if (
            ptype != "python"
            and section is not None
            and written_section == "predictor.multi_model_reloading"
        ):
            self.error_at(
                section,
                f"only applies to type: python (use models for type: {ptype})",
            )
            return None

        one_of = [key for key in ("path", "paths", "dir") if f"predictor.models.{key}" in given]
        if not one_of:
            self.fail("predictor.models", "must give one of path, paths or dir")
            return None
        if len(one_of) > 1:
            loc = given[f"predictor.models.{one_of[1]}"]
            self.error_at(
                loc,
                f"only one of path, paths or dir may be given (got {' and '.join(one_of)})",
            )
            return None

        refs: list[ModelRef] = []
        directory = None
        if "path" in one_of:
            loc = given["predictor.models.path"]
            path = self._model_path(loc.value, loc.line, loc.written, want="any")
            if path is not None:
                self._check_layout(path, ptype, loc.line, loc.written)
                refs.append(ModelRef(DEFAULT_MODEL_NAME, path))
        elif "paths" in one_of:
            refs = self._model_paths(given["predictor.models.paths"], ptype)
        else:
            loc = given["predictor.models.dir"]
            directory = self._model_path(loc.value, loc.line, loc.written, want="dir")
            if directory is not None and not schema.REMOTE_PATH.fullmatch(directory):
                self._check_model_dir(directory, loc, ptype)

        signature = given.get("predictor.models.signature_key")
        self._check_signature_type(signature, ptype)
        cache = given.get("predictor.models.cache_size")
        disk = given.get("predictor.models.disk_cache_size")
        if (cache is None) != (disk is None):
            present = cache or disk
            assert present is not None
            missing = "disk_cache_size" if cache else "cache_size"
            self.error_at(
                present,
                f"must be given together with {missing} (both or neither)",
            )
        elif cache is not None and disk is not None and cache.value > disk.value:
            self.error_at(
                cache,
                f"cache_size cannot be greater than disk_cache_size ({cache.value} > {disk.value})",
            )
        return ModelsSpec(
            paths=tuple(refs),
            dir=directory,
            signature_key=signature.value if signature else None,
            cache_size=cache.value if cache else None,
            disk_cache_size=disk.value if disk else None,
        )

    def _check_signature_type(self, signature: Located | None, ptype: str) -> None:
        """A signature_key (of the models or of one model) names a TensorFlow signature def."""
        if signature is not None and ptype != "tensorflow":
            self.error_at(signature, f"only applies to type: tensorflow (got type: {ptype})")

    def _model_paths(self, loc: Located, ptype: str) -> list[ModelRef]:
        refs: list[ModelRef] = []
        seen: dict[str, int] = {}
        if not loc.value:
            self.error_at(loc, "must list at least one model")
        for item_line, values in loc.value:
            name, path = values.get("name"), values.get("path")
            signature = values.get("signature_key")
            self._check_signature_type(signature, ptype)
            if name is None or path is None:
                continue  # reported by the walk
            if name.value == DEFAULT_MODEL_NAME:
                self.error_at(
                    name,
                    f"{DEFAULT_MODEL_NAME} is reserved (the name of a single model)",
                )
                continue
            if not schema.MODEL_NAME.fullmatch(name.value):
                self.error_at(
                    name,
                    "must be letters, digits, '-', '_' or '.', start with a letter or "
                    f"digit and be at most 63 characters (got {show(name.value)})",
                )
                continue
            if name.value in seen:
                self.error_at(
                    name,
                    f"model {show(name.value)} is already defined on line "
                    f"{seen[name.value]} (names must be unique)",
                )
                continue
            seen[name.value] = item_line
            model_path = self._model_path(path.value, path.line, path.written, want="any")
            if model_path is not None:
                self._check_layout(model_path, ptype, path.line, path.written)
                refs.append(
                    ModelRef(name.value, model_path, signature.value if signature else None)
                )
        return refs

    def _check_model_dir(self, directory: str, loc: Located, ptype: str) -> None:
        """Each sub-folder of a local `dir` is a model named after it (problems show its path as
        written, relative to the project where it is)."""
        folder = self.root / directory
        names = sorted(child.name for child in folder.iterdir() if child.is_dir())
        if not names:
            self.error_at(
                loc,
                f"{show(loc.value)} holds no model folders (each "
                "sub-folder is a model named after it)",
            )
        for name in names:
            if name == DEFAULT_MODEL_NAME or not schema.MODEL_NAME.fullmatch(name):
                self.error_at(
                    loc,
                    f"sub-folder {show(name)} cannot be a model "
                    "name (letters, digits, '-', '_' or '.', starting with a letter or "
                    f"digit, not {DEFAULT_MODEL_NAME})",
                )
            else:
                self._check_layout(f"{directory.rstrip('/')}/{name}", ptype, loc.line, loc.written)

    def _check_layout(self, path: str, ptype: str | None, line: int, written: str) -> None:
        """A local TensorFlow or ONNX model laid out as Cortex expected (remote ones are
        checked when fetched)."""
        if ptype in ("tensorflow", "onnx") and not schema.REMOTE_PATH.fullmatch(path):
            problem = model_layout_problem(self.root / path, ptype)
            if problem is not None:
                self.error(line, written, f"{show(path)}: {problem}")

    def _model_path(self, raw: str, line: int, written: str, want: str) -> str | None:
        """Remote models are taken as written; local ones must exist (relative: in the project)."""
        if raw.startswith("gs://"):  # Cortex read them; nothing here fetches them
            self.error(
                line,
                written,
                f"{show(raw)}: gs:// model sources are not supported; use s3://, http(s):// "
                "or a local path",
            )
            return None
        if schema.REMOTE_PATH.fullmatch(raw):
            return raw
        if "://" in raw:
            self.error(
                line,
                written,
                "must be a local path or an s3://, http:// or https:// address without "
                f"spaces, quotes, backslashes or '$' (got {show(raw)})",
            )
            return None
        if os.path.isabs(raw):
            if not self._safe_path(raw, line, written):
                return None
            if not os.path.exists(raw):
                self.error(line, written, f"{show(raw)} does not exist")
                return None
            if want == "dir" and not os.path.isdir(raw):
                self.error(line, written, f"{show(raw)} must be a folder (got a file)")
                return None
            local: str | None = raw
        else:
            local = self._inside_project(raw, line, written, want)
        if local is None:
            return None
        # The model's bytes go into the image, links followed: none may be a hidden file.
        hidden = hidden_in_model((self.root / local).resolve(), self.root)
        if hidden is not None:
            self.error(
                line,
                written,
                f"{show(raw)}: {hidden}; hidden files (.env among them) never go into an image",
            )
            return None
        return local
