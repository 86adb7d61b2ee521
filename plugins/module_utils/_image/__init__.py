# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils package of turingpi.cluster. Do not use it from outside the collection.

"""The block engine of turingpi.cluster.image_write, one concern per file:

- common: the errors and units the other files share;
- bmap: bmaptool's block map, parsed and checked;
- sources: the image as a stream (local file or URL, raw or compressed);
- digest: the sha256 option, hashing a local file, remembering a digest that matched;
- targets: what the target is, and the refusals;
- blockio: reading and syncing the target (cache drops, read-ahead, fsync on a thread);
- engine: the write itself (compare, write what differs, read back).
"""
