# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Errors and units shared by the image engine's files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 64 * 1024
DEFAULT_CHUNK_SIZE = 4 * MiB


class ImageError(Exception):
    """Any failure of the engine; the message names the resource and says what to do."""


class RefusedError(ImageError):
    """The target is unsafe to write; nothing was written."""


class ChecksumError(ImageError):
    pass


class SourceError(ImageError):
    pass


class BmapError(ImageError):
    pass


class VerifyError(ImageError):
    pass


class MissingZstdError(ImageError):
    pass


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(n) < 1024 or unit == 'GiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024
    return '%.1f TiB' % n  # pragma: no cover
