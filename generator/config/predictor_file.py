"""The predictor file, parsed (never imported): does it define what its interface needs?"""

from __future__ import annotations

import ast
from typing import Any

from cortex_serve.contract import (
    HANDLER_CLASS,
    HANDLER_METHODS,
    PREDICTOR_CLASSES,
    REQUEST_HANDLER_FUNCTIONS,
)

from ..spec import ModelsSpec
from .kinds import KindRules


class PredictorFileRules(KindRules):
    def _check_predictor_file(
        self, path: str, ptype: str, interface: str, models: ModelsSpec | None
    ) -> None:
        if self.kind != "RealtimeAPI":

            def rule(names: dict[str, ast.AST]) -> str | None:
                return self._job_file_rule(names, path, ptype, interface)
        elif interface in ("class", "handler"):

            def rule(names: dict[str, ast.AST]) -> str | None:
                return self._class_rule(names, path, ptype, models, interface == "handler")
        else:

            def rule(names: dict[str, ast.AST]) -> str | None:
                return self._functions_rule(names, path)

        self._check_python_file(path, "predictor.path", rule)

    def _check_python_file(self, path: str, target: str, rule: Any) -> None:
        line, written = self.where(target)
        try:
            source = (self.root / path).read_bytes()
            tree = ast.parse(source, filename=path)
        except SyntaxError as err:
            self.error(line, written, f"{path}:{err.lineno}: invalid Python: {err.msg}")
            return
        except (ValueError, OSError) as err:
            self.error(line, written, f"{path}: cannot be read as Python: {err}")
            return
        message = rule(top_level_names(tree.body))
        if message:
            self.error(line, written, message)

    def _class_rule(
        self,
        names: dict[str, ast.AST],
        path: str,
        ptype: str,
        models: ModelsSpec | None,
        handler: bool,
    ) -> str | None:
        """The interface's class (PythonPredictor and the like; v0.34's Handler) is defined,
        with predict (a Handler: a handle_<verb>) and, with multi_model_reloading, load_model."""
        class_name = HANDLER_CLASS if handler else PREDICTOR_CLASSES[ptype]
        node = names.get(class_name)
        if node is None:
            expected = "a handler: API" if handler else f"type: {ptype}"
            return f"{path} defines no class {class_name} (expected for {expected})"
        if not isinstance(node, ast.ClassDef) or node.bases:
            return None  # imported or inherited: its methods cannot be seen from here
        methods = top_level_names(node.body)
        if handler and not any(method in methods for method in HANDLER_METHODS.values()):
            return (
                f"class {HANDLER_CLASS} in {path} defines none of "
                f"{', '.join(HANDLER_METHODS.values())} (one per HTTP verb it answers)"
            )
        if not handler and "predict" not in methods:
            return f"class {class_name} in {path} defines no predict method"
        if ptype == "python" and models is not None and "load_model" not in methods:
            return (
                f"class {class_name} in {path} defines no load_model method (required with "
                "multi_model_reloading)"
            )
        return None

    def _functions_rule(self, names: dict[str, ast.AST], path: str) -> str | None:
        if "predict" not in names:
            return f"{path} defines no function predict (expected for a kind: api predictor)"
        init = names.get("init")
        arity = (
            len(init.args.posonlyargs) + len(init.args.args)
            if isinstance(init, (ast.FunctionDef, ast.AsyncFunctionDef))
            else None
        )
        # init(metadata) is v0.9's; init(model_path, metadata) v0.10's
        if arity == 1 or (arity is None and "predictor.models.path" not in self.values):
            self.generation = "v0.9"
        return None

    @staticmethod
    def _handlers_rule(names: dict[str, ast.AST]) -> str | None:
        if not any(name in names for name in REQUEST_HANDLER_FUNCTIONS):
            return (
                "defines neither pre_inference nor post_inference (expected in a request handler)"
            )
        return None


def top_level_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module (or class body) defines at its top level, including under if/try/with."""
    names: dict[str, ast.AST] = {}
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[stmt.name] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                names[(alias.asname or alias.name).split(".")[0]] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        names[node.id] = stmt
        elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            nested: list[ast.stmt] = list(getattr(stmt, "body", []))
            nested += getattr(stmt, "orelse", []) + getattr(stmt, "finalbody", [])
            for handler in getattr(stmt, "handlers", []):
                nested += handler.body
            names.update({k: v for k, v in top_level_names(nested).items() if k not in names})
    return names
