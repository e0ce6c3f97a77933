"""Widgets whose value lives in the URL (``st.query_params``), so a copied link reopens the same view.

Each wrapper takes a widget ``key`` ("<page>.<field>"); the URL parameter has the same name unless
``param`` says otherwise (the global filters use short names: ``topic``, ``dimension``...). The value is
taken, in order, from the widget's own state, from a copy kept when the page was last shown (widget state
is dropped while a page is not on screen), from the URL, then from ``default``; values no longer among the
options are dropped. After the widget is drawn its value is written back to the URL (default values are
left out, to keep links short).

>>> _parse(["1", "x"], [1, 2, 3], multi=True)
[1]
>>> _parse(["nan", "inf", "0.5"], None, multi=True, kind=float)
[0.5]
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import streamlit as st

__all__ = ["selectbox", "multiselect", "radio", "toggle", "text_input", "number_input", "prune",
           "url_value"]

_KEEP = "_fairpp.keep."
_MISSING = object()


def _parse(raw: list[str], options: Sequence[Any] | None, *, multi: bool, kind: type | None = None) -> Any:
    """URL strings -> values: matched against the options' ``str()``, or converted to ``kind``."""
    out = []
    for s in raw:
        if options is not None:
            match = [o for o in options if str(o) == s]
            if match:
                out.append(match[0])
        elif kind is bool:
            out.append(s.lower() in ("1", "true", "yes", "on"))
        elif kind is not None:
            try:
                value = kind(s)
            except (TypeError, ValueError):
                continue
            if isinstance(value, float) and not math.isfinite(value):  # "nan", "inf": no widget takes them
                continue
            out.append(value)
        else:
            out.append(s)
    if multi:
        return out
    return out[0] if out else _MISSING


def url_value(name: str, *, options: Sequence[Any] | None = None, multi: bool = False,
              kind: type | None = None) -> Any:
    """The value of a URL parameter (``None`` / ``[]`` when absent or not among the options)."""
    if name not in st.query_params:
        return [] if multi else None
    raw = st.query_params.get_all(name) if multi else [st.query_params[name]]
    value = _parse(raw, options, multi=multi, kind=kind)
    return None if value is _MISSING else value


def _prepare(key: str, *, default: Any, options: Sequence[Any] | None, multi: bool, param: str | None,
             kind: type | None) -> None:
    ss = st.session_state
    if key not in ss:
        if _KEEP + key in ss:
            ss[key] = ss[_KEEP + key]
        else:
            name = param or key
            value = _MISSING
            if name in st.query_params:
                raw = st.query_params.get_all(name) if multi else [st.query_params[name]]
                value = _parse(raw, options, multi=multi, kind=kind)
                if multi and not value and raw:
                    value = _MISSING
            ss[key] = default if value is _MISSING else value
    if options is not None:
        opts = list(options)
        if multi:
            kept = [v for v in ss[key] if v in opts]
            if kept != list(ss[key]):
                ss[key] = kept
        elif ss[key] not in opts:
            ss[key] = default if default in opts else (opts[0] if opts else None)


def _publish(key: str, *, default: Any, param: str | None) -> None:
    value = st.session_state.get(key)
    st.session_state[_KEEP + key] = value
    name = param or key
    is_default = value == default or value is None or value == "" or (isinstance(value, list) and not value)
    if is_default:
        if name in st.query_params:
            del st.query_params[name]
        return
    if isinstance(value, (list, tuple)):
        new = [str(v) for v in value]
        if st.query_params.get_all(name) != new:
            st.query_params[name] = new
    else:
        new = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if st.query_params.get(name) != new:
            st.query_params[name] = new


def _bound(widget: str, label: str, *, key: str, default: Any, options: Sequence[Any] | None,
           multi: bool = False, param: str | None = None, kind: type | None = None, where: Any = None,
           **kwargs: Any) -> Any:
    _prepare(key, default=default, options=options, multi=multi, param=param, kind=kind)
    if kind is int:  # keep a number from the URL within the widget's range
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        value = st.session_state[key]
        st.session_state[key] = min(max(value, low if low is not None else value), high if high is not None else value)
    target = where if where is not None else st
    args = (label, list(options)) if options is not None else (label,)
    value = getattr(target, widget)(*args, key=key, **kwargs)
    _publish(key, default=default, param=param)
    return value


def selectbox(label: str, options: Sequence[Any], *, key: str, default: Any = None, param: str | None = None,
              where: Any = None, **kwargs: Any) -> Any:
    """``st.selectbox`` bound to the URL; ``default`` is the first option unless given."""
    options = list(options)
    default = options[0] if default is None and options else default
    return _bound("selectbox", label, key=key, default=default, options=options, param=param, where=where,
                  **kwargs)


def radio(label: str, options: Sequence[Any], *, key: str, default: Any = None, param: str | None = None,
          where: Any = None, horizontal: bool = True, **kwargs: Any) -> Any:
    """``st.radio`` (horizontal) bound to the URL."""
    options = list(options)
    default = options[0] if default is None and options else default
    return _bound("radio", label, key=key, default=default, options=options, param=param, where=where,
                  horizontal=horizontal, **kwargs)


def multiselect(label: str, options: Sequence[Any], *, key: str, default: Sequence[Any] = (),
                param: str | None = None, where: Any = None, **kwargs: Any) -> list[Any]:
    """``st.multiselect`` bound to the URL (repeated parameters: ``?group=men&group=women``)."""
    return _bound("multiselect", label, key=key, default=list(default), options=list(options), multi=True,
                  param=param, where=where, **kwargs)


def toggle(label: str, *, key: str, default: bool = False, param: str | None = None, where: Any = None,
           **kwargs: Any) -> bool:
    """``st.toggle`` bound to the URL (``1`` / ``0``)."""
    return _bound("toggle", label, key=key, default=default, options=None, param=param, kind=bool, where=where,
                  **kwargs)


def checkbox(label: str, *, key: str, default: bool = False, param: str | None = None, where: Any = None,
             **kwargs: Any) -> bool:
    """``st.checkbox`` bound to the URL (``1`` / ``0``)."""
    return _bound("checkbox", label, key=key, default=default, options=None, param=param, kind=bool, where=where,
                  **kwargs)


def text_input(label: str, *, key: str, default: str = "", param: str | None = None, where: Any = None,
               **kwargs: Any) -> str:
    """``st.text_input`` bound to the URL."""
    return _bound("text_input", label, key=key, default=default, options=None, param=param, kind=str,
                  where=where, **kwargs)


def number_input(label: str, *, key: str, default: int = 0, param: str | None = None, where: Any = None,
                 **kwargs: Any) -> int:
    """``st.number_input`` (integers) bound to the URL."""
    return _bound("number_input", label, key=key, default=int(default), options=None, param=param, kind=int,
                  where=where, **kwargs)


def prune(page_prefix: str, *, known_prefixes: Sequence[str]) -> None:
    """Drop URL parameters of other pages ("<page>.<field>" for another known page)."""
    for name in list(st.query_params.keys()):
        prefix = name.split(".", 1)[0] if "." in name else None
        if prefix and prefix != page_prefix and prefix in known_prefixes:
            del st.query_params[name]
