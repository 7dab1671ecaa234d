#!/usr/bin/env node
// A solc command line over solc-js (the npm package `solc`), just enough for py-solc-x.
//
// py-solc-x runs `<solc> --version` and parses "Version: 0.8.x+commit.<hash>", then runs
// `<solc> --standard-json [--allow-paths ...]` with the input on stdin and parses stdout as
// JSON. solc-js's own `solcjs` CLI prints a line before the JSON, so it cannot be used raw.
//
// Where solc-js lives: $ESCROWKIT_SOLCJS (the package directory), else normal Node
// resolution (NODE_PATH, then node_modules folders above this file and the working dir).
"use strict";

const fs = require("fs");
const path = require("path");

function loadSolc() {
  const candidates = [];
  if (process.env.ESCROWKIT_SOLCJS) candidates.push(process.env.ESCROWKIT_SOLCJS);
  candidates.push("solc");
  const errors = [];
  for (const candidate of candidates) {
    try {
      return require(require.resolve(candidate, { paths: [process.cwd(), __dirname] }));
    } catch (err) {
      errors.push(`${candidate}: ${err.message.split("\n")[0]}`);
    }
  }
  process.stderr.write(
    "solc-js not found (run `npm ci` in the project, or set ESCROWKIT_SOLCJS): " +
      errors.join("; ") +
      "\n"
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = { version: false, standardJson: false, allowPaths: [], basePath: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--version") args.version = true;
    else if (arg === "--standard-json") args.standardJson = true;
    else if (arg === "--allow-paths") args.allowPaths.push(...String(argv[++i] || "").split(","));
    else if (arg === "--base-path") args.basePath = argv[++i];
    else {
      process.stderr.write(`unrecognised option '${arg}'\n`);
      process.exit(1);
    }
  }
  return args;
}

function readStdin() {
  return fs.readFileSync(0, "utf8");
}

// Imports are resolved only inside the allowed directories (like native solc's --allow-paths),
// so a source cannot read arbitrary files from the machine.
function importCallback(args) {
  const roots = [args.basePath || process.cwd(), ...args.allowPaths]
    .filter(Boolean)
    .map((p) => path.resolve(p));
  return (importPath) => {
    for (const root of roots) {
      const full = path.resolve(root, importPath);
      if (!full.startsWith(root + path.sep)) continue;
      if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
    }
    return { error: `File not found inside allowed paths: ${importPath}` };
  };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.version) {
    const solc = loadSolc();
    const version = solc.version().replace(/\.Emscripten\.clang$/, "");
    process.stdout.write(`solc, the solidity compiler commandline interface (solc-js)\nVersion: ${version}\n`);
    return;
  }
  if (!args.standardJson) {
    process.stderr.write("only --version and --standard-json are supported\n");
    process.exit(1);
  }
  const input = readStdin();
  const solc = loadSolc();
  process.stdout.write(solc.compile(input, { import: importCallback(args) }));
}

main();
