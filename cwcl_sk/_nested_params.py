"""Nested parameters for encoder options and named callbacks, the way skorch routes them.

``student__hidden_sizes=(64,)`` and ``teacher__batch_size=32`` are keyword parameters stored
as attributes by ``__init__``; callbacks given as ``(name, callback)`` pairs expose their own
parameters as ``callbacks__<name>__<param>``. Both are visible to ``get_params`` and
``set_params``, hence to ``clone`` and ``GridSearchCV``.
"""

from __future__ import annotations

import inspect

__all__ = ["ENCODER_PREFIXES", "NestedParamsMixin"]

ENCODER_PREFIXES = ("student__", "teacher__")


class NestedParamsMixin:
    """``get_params``/``set_params`` that also handle encoder options and named callbacks."""

    # Keyword options with these prefixes are parameters too (see validate_parameters).
    _parameter_prefixes = ENCODER_PREFIXES

    @classmethod
    def _keyword_options_name(cls) -> str | None:
        """The name of ``__init__``'s ``**options`` catch-all, if it has one."""
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                return parameter.name
        return None

    def _encoder_option_names(self) -> list[str]:
        return sorted(name for name in vars(self) if name.startswith(ENCODER_PREFIXES))

    def _options(self, prefix: str) -> dict:
        """The options starting with ``prefix``, without it."""
        return {
            name[len(prefix) :]: getattr(self, name)
            for name in self._encoder_option_names()
            if name.startswith(prefix)
        }

    def _named_callbacks(self) -> dict:
        callbacks = getattr(self, "callbacks", None)
        if not isinstance(callbacks, list | tuple):
            return {}  # None, or a value fit will reject with a clear message
        return {
            item[0]: item[1]
            for item in callbacks
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        }

    def get_params(self, deep=True):
        """Parameters of this estimator, encoder options and named callbacks included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of sub-objects that have them (a kernel object, named
            callbacks).

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=deep)
        params.update({name: getattr(self, name) for name in self._encoder_option_names()})
        if deep:
            for name, callback in self._named_callbacks().items():
                params[f"callbacks__{name}"] = callback
                if hasattr(callback, "get_params"):
                    for key, value in callback.get_params(deep=False).items():
                        params[f"callbacks__{name}__{key}"] = value
        return params

    def set_params(self, **params):
        """Set parameters, including ``student__*``/``teacher__*`` and ``callbacks__*``.

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self : estimator
        """
        catch_all = self._keyword_options_name()
        for name in [name for name in params if name.startswith(ENCODER_PREFIXES)]:
            setattr(self, name, params.pop(name))
        if catch_all in params:
            # ``__init__(encoder_options=v)`` stores v under that name, as it stores any
            # keyword; set_params does the same, and fit rejects it with the valid names.
            setattr(self, catch_all, params.pop(catch_all))
        callback_params = {
            name: params.pop(name) for name in list(params) if name.startswith("callbacks__")
        }
        if params:
            super().set_params(**params)
        named = self._named_callbacks()
        for key, value in callback_params.items():
            callback_name, _, parameter = key[len("callbacks__") :].partition("__")
            if callback_name not in named:
                raise ValueError(
                    f"Invalid parameter {key!r}: no callback named {callback_name!r}; named "
                    f"callbacks: {sorted(named)}."
                )
            if parameter:
                named[callback_name].set_params(**{parameter: value})
            else:
                self.callbacks = [
                    _replace_named(item, callback_name, value) for item in self.callbacks
                ]
        return self


def _replace_named(item, name: str, callback):
    """``(name, callback)`` in place of the pair called ``name``; other items unchanged."""
    if isinstance(item, tuple) and item[0] == name:
        return (name, callback)
    return item
