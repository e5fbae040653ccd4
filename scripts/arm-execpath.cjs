'use strict';
// Preloaded into every Node started by the qemu wrapper (scripts/arm-setup.sh writes it): child
// processes started with process.execPath (node --test's per-file runs, fork(), the tests' own
// spawns) must go through the wrapper too, since without binfmt_misc the kernel cannot exec the
// ARM binary itself.
if (process.env.IOTTLY_ARM_NODE) process.execPath = process.env.IOTTLY_ARM_NODE;
