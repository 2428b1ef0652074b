"""The language trtlab speaks to learners: English, or Simplified Chinese (``zh_CN``) when asked.

Messages go through the standard :mod:`gettext` machinery: ``trtlab/locale/<lang>/LC_MESSAGES/trtlab.mo``, compiled
by Babel from the ``.po`` catalog beside it (``python -m trtlab.course i18n-update --lang zh_CN`` extracts, merges and
compiles; both files are committed, so a fresh clone and ``pip install -e .`` need no build step, and a test checks
that the ``.mo`` matches its ``.po``). The language is chosen, first match wins, by
``tl.set_language("zh_CN")``, the ``TRTLAB_LANG`` environment variable, then the locale (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG`` starting with ``zh``). English is the fallback for any message without a translation.
Numbers, API names, file names and code are never translated: translated messages keep their ``{placeholders}``.

In package code::

    from trtlab.i18n import N_, _
    raise Mismatch(_("for {situation} you returned {got!r}").format(situation=_(situation), got=got))
    TITLE = N_("Which TensorRT calls are current?")   # marked for extraction; translated where it is shown
"""

from __future__ import annotations

import gettext as _gettext
import os
from functools import lru_cache
from pathlib import Path

__all__ = ["DOMAIN", "LANGUAGES", "LOCALE_DIR", "LOCALE_VARIABLES", "N_", "gettext", "language", "set_language"]

DOMAIN = "trtlab"
LOCALE_DIR = Path(__file__).with_name("locale")
#: the locale's variables gettext consults, first set wins (TRTLAB_LANG, checked before them, overrides all)
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
#: languages with a catalog, besides English (the source language)
LANGUAGES = ("zh_CN",)
_chosen: str | None = None


def _normalise(value: str) -> str | None:
    """``zh_CN.UTF-8``, ``zh-cn``, ``zh`` → ``zh_CN``; ``en``/``C``/``POSIX`` → ``en``; anything else → None."""
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if code.startswith("zh"):
        return "zh_CN"
    if code in ("en", "c", "posix") or code.startswith("en_"):
        return "en"
    return None


def set_language(lang: str | None) -> str:
    """Speak ``lang`` ("zh_CN" or "en") from now on; ``None`` goes back to ``TRTLAB_LANG``/the locale. Returns the
    language now in use. The Chinese notebooks call ``tl.set_language("zh_CN")`` in their first cell."""
    global _chosen
    if lang is None:
        _chosen = None
        return language()
    normal = _normalise(lang)
    if normal is None:
        from trtlab.errors import UnsupportedFeature

        raise UnsupportedFeature(f"no catalog for language {lang!r} | expected one of: en, {', '.join(LANGUAGES)}. "
                                 "Call tl.set_language('zh_CN') or tl.set_language('en').")
    _chosen = normal
    return normal


def language() -> str:
    """The language in use: set_language(), else TRTLAB_LANG, else the locale's (zh → zh_CN), else English."""
    if _chosen is not None:
        return _chosen
    explicit = _normalise(os.environ.get("TRTLAB_LANG", ""))
    if explicit:
        return explicit
    for variable in LOCALE_VARIABLES:
        value = os.environ.get(variable, "")
        if value:  # the first one set decides, as in gettext (LANGUAGE may list several: zh_CN:en)
            return _normalise(value.split(":")[0]) or "en"
    return "en"


@lru_cache(maxsize=None)
def _catalog(lang: str) -> _gettext.NullTranslations:
    if lang == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang], fallback=True)


def gettext(message: str) -> str:
    """``message`` in the language in use (itself when it has no translation)."""
    return _catalog(language()).gettext(message) if message else message


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext name for "mark, translate later"
    """Mark ``message`` for extraction without translating it now (titles, hints and tables defined at import time,
    translated with ``_()`` where they are shown)."""
    return message
