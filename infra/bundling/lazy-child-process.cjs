"use strict";
// Stands in for node:child_process inside commander in ferry's CLI bundle. commander requires it at load
// for executable subcommands (`git-style` commands), which ferry does not have; loading it costs
// node:child_process, node:dgram and net's socket lists at every start. This loads it on first use.
module.exports = {
  spawn: (...args) => require("node:child_process").spawn(...args),
};
