"""File names that come from users (uploads, export names, report names): never a path, never outside its folder."""

from pathlib import Path

from werkzeug.utils import secure_filename

from asset_map.errors import InputError


def safe_filename(name, *, default=None):
    """A plain file name made safe for any folder (``../../etc/passwd`` -> ``etc_passwd``).

    A name with nothing usable left is an InputError, unless ``default`` is given."""
    # Old Windows browsers send whole paths with backslashes; werkzeug only splits on "/" on POSIX.
    cleaned = secure_filename(str(name or "").replace("\\", "/"))
    if not cleaned:
        if default is not None:
            return default
        msg = f"File name {str(name)[:100]!r} has no usable characters; use letters, digits, '-', '_' or '.'."
        raise InputError(msg)
    return cleaned[:200]


def inside(folder, name):
    """The path of ``name`` inside ``folder``; an InputError when it would lead anywhere else (``..``, an
    absolute path, a symlink out)."""
    base = Path(folder).resolve()
    target = (base / str(name)).resolve()
    if target != base and base not in target.parents:
        msg = f"File name {str(name)[:100]!r} points outside its folder."
        raise InputError(msg)
    return target
