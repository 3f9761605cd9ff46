"""Text the public types, made plain: HTML stripped (nh3, the maintained Ammonia binding; bleach is deprecated),
entities decoded, control characters dropped, whitespace tidied and a length limit enforced. Stored values are
plain text; templates still escape them when shown.
"""

import html
import re
import unicodedata

import nh3

from asset_map.errors import InputError

_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# nh3 keeps the text of the tags it strips; the content of these is never wanted as text.
_DROP_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math"}


def strip_html(value):
    """``value`` with every tag removed; repeated until stable so encoded markup (``&lt;script&gt;``) cannot
    survive as markup once decoded."""
    text = str(value)
    for _ in range(4):
        cleaned = html.unescape(nh3.clean(text, tags=set(), clean_content_tags=_DROP_CONTENT))
        if cleaned == text:
            break
        text = cleaned
    # Anything still shaped like a tag after four rounds is dropped outright.
    return re.sub(r"<[^>]*>", "", text).replace("<", "").replace(">", "") if "<" in text else text


def clean(value, *, field, max_length, multiline=False, required=False, label=None):
    """Plain text of at most ``max_length`` characters, or None when empty; InputError naming the field when it is
    required and empty or too long."""
    label = label or field.replace("_", " ")
    text = "" if value is None else str(value)
    if len(text) > max_length * 4:
        msg = f"{label.capitalize()} is too long: at most {max_length} characters, please."
        raise InputError(msg)
    text = unicodedata.normalize("NFC", strip_html(text.replace("\r\n", "\n").replace("\r", "\n")))
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    if multiline:
        text = _BLANK_LINES.sub("\n\n", "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")))
    else:
        text = _SPACES.sub(" ", text.replace("\n", " "))
    text = text.strip()
    if not text:
        if required:
            msg = f"Enter {label}."
            raise InputError(msg)
        return None
    if len(text) > max_length:
        msg = f"{label.capitalize()} is too long ({len(text)} characters): at most {max_length}, please."
        raise InputError(msg)
    return text
