# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module types in the inventory contract: the spellings people use, which module boots from
where, and image_problems over what image_info read from real images."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.filter.image_problems import FilterModule
from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import (
    MODULE_TYPES, MODULES, BoardError, image_problems, module_boot_problem, normalize_module,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.firmware import inspect_image
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils.fat_images import (
    make_disk, raspios_arm64, raspios_armhf, ubuntu_arm64,
)

from ansible.errors import AnsibleFilterError


@pytest.mark.parametrize('spelling, name', [
    ('cm1', 'cm1'), ('CM1', 'cm1'), ('Compute Module 1', 'cm1'), ('1', 'cm1'),
    ('cm3', 'cm3'), ('CM3L', 'cm3-lite'), ('cm3-lite', 'cm3-lite'), ('CM3 Lite', 'cm3-lite'), ('cm3_lite', 'cm3-lite'),
    ('CM3+', 'cm3plus'), ('cm3plus', 'cm3plus'), ('cm3p', 'cm3plus'), ('3+', 'cm3plus'), ('compute module 3+', 'cm3plus'),
    ('CM3+ Lite', 'cm3plus-lite'), ('cm3+l', 'cm3plus-lite'), ('CM3+Lite', 'cm3plus-lite'), ('cm3plus-lite', 'cm3plus-lite'),
    ('cm3plite', 'cm3plus-lite'), (None, None),
])
def test_module_spellings(spelling, name):
    assert normalize_module('x', spelling) == name


@pytest.mark.parametrize('spelling', ['cm2', 'cm4', 'cm4s', 'pi3', '', 'cm3 plus plus', True])
def test_unknown_modules(spelling):
    with pytest.raises(BoardError) as exc:
        normalize_module('x', spelling)
    assert str(exc.value) == ("x: module must be one of cm1, cm3, cm3-lite, cm3plus or cm3plus-lite (also written CM3+, CM3L,"
                              " CM3+ Lite, ...), got '%s'" % spelling)


def test_every_module_and_boot_source():
    allowed = dict((m, [b for b in ('emmc', 'sd', 'netboot') if module_boot_problem(m, b) is None]) for m in MODULES)
    assert allowed == {'cm1': ['emmc'], 'cm3': ['emmc', 'netboot'], 'cm3-lite': ['sd', 'netboot'],
                       'cm3plus': ['emmc', 'netboot'], 'cm3plus-lite': ['sd', 'netboot']}
    assert module_boot_problem(None, 'netboot') is None and module_boot_problem('cm1', None) is None
    assert [MODULE_TYPES[m]['soc'] for m in MODULES] == ['BCM2835', 'BCM2837', 'BCM2837', 'BCM2837B0', 'BCM2837B0']


@pytest.fixture(scope='module')
def infos(tmp_path_factory):
    out = {}
    for name, files in (('raspios-arm64', raspios_arm64()), ('raspios-armhf', raspios_armhf()), ('ubuntu', ubuntu_arm64())):
        out[name] = inspect_image(make_disk(tmp_path_factory.mktemp(name), files))
    nothing = raspios_armhf()
    for k in ('kernel.img', 'kernel7.img'):
        del nothing[k]
    out['no-kernel'] = inspect_image(make_disk(tmp_path_factory.mktemp('nokernel'), nothing))
    out['gpt'] = inspect_image(make_disk(tmp_path_factory.mktemp('gpt'), raspios_arm64(), table='gpt'))
    return out


def test_image_problems_per_node(infos):
    arm64 = infos['raspios-arm64']
    assert image_problems(arm64, 'cm3plus-lite', 'netboot') == []
    assert image_problems(arm64, 'CM3', 'emmc') == []
    assert image_problems(arm64, 'cm1', 'emmc') == [
        'the image is for arm64 (config.txt sets arm_64bit=1: the firmware starts kernel8.img in 64-bit mode): a CM1 (BCM2835, ARMv6)'
        ' runs only 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image']
    assert image_problems(arm64, 'cm1', 'netboot') == [
        'a CM1 (BCM2835) cannot network boot: network boot is in the boot ROM of the BCM2837 only (CM3, CM3+); boot it from its'
        ' eMMC (boot: emmc) or put a CM3 or CM3+ in this slot',
        'the image is for arm64 (config.txt sets arm_64bit=1: the firmware starts kernel8.img in 64-bit mode): a CM1 (BCM2835, ARMv6)'
        ' runs only 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image']
    assert image_problems(infos['raspios-armhf'], 'cm1', 'emmc') == []
    assert image_problems(infos['ubuntu'], 'cm3plus', None) == []
    # without a module type the image must fit one of them
    assert image_problems(arm64) == [] and image_problems(infos['raspios-armhf']) == []


def test_image_problems_when_nothing_fits(infos):
    assert image_problems(infos['no-kernel']) == [
        'no module of the Turing Pi V1 (CM1, CM3, CM3+) can run this image: CM1: a CM1 would load kernel.img (the default kernel'
        ' of a CM1), which is not on the firmware partition (the partition has kernel7l.img, for Pi 4 and CM4): the image has no'
        ' kernel this module runs; CM3: a CM3 would load kernel7.img (the default kernel of a CM3), which is not on the firmware'
        ' partition (the partition has kernel7l.img, for Pi 4 and CM4): the image has no kernel this module runs; CM3+: a CM3+ would'
        ' load kernel7.img (the default kernel of a CM3+), which is not on the firmware partition (the partition has kernel7l.img,'
        ' for Pi 4 and CM4): the image has no kernel this module runs']
    gpt = image_problems(infos['gpt'], 'cm3')
    assert gpt == [infos['gpt']['problems'][0]] and gpt[0].startswith('the image has a GPT partition table')


def test_image_problems_refuses_other_input():
    with pytest.raises(BoardError) as exc:
        image_problems('raspios.img', 'cm3')
    assert str(exc.value) == ('image_problems: expected the result of turingpi.cluster.image_info (a dictionary with modules),'
                              ' got str')


def test_filter(infos):
    f = FilterModule().filters()['image_problems']
    assert f(infos['raspios-arm64'], 'cm3plus', 'netboot') == []
    assert len(f(infos['raspios-arm64'], 'cm1')) == 1
    with pytest.raises(AnsibleFilterError) as exc:
        f(infos['raspios-arm64'], 'cm7')
    assert 'module must be one of' in str(exc.value)
