// Settings from the environment, read as both Node servers of the comparison chain read them: a missing or
// empty one stops the process with one line naming it (exit 2), like the Rust servers.
'use strict';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`missing setting ${name}`);
    process.exit(2);
  }
  return value;
};
const list = (value) => value.split(/[ ,]+/).filter(Boolean);

module.exports = { env, list };
