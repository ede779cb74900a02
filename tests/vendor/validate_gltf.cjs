// Validate one .glb/.gltf with the vendored Khronos glTF validator and print its JSON report.
// Usage: node validate_gltf.cjs FILE   (exit 0 with the report on stdout; exit 2 if unreadable)
'use strict';
const fs = require('fs');
const path = require('path');
const validator = require('./gltf-validator');

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate_gltf.cjs FILE');
  process.exit(2);
}
const bytes = new Uint8Array(fs.readFileSync(file));
validator
  .validateBytes(bytes, { uri: path.basename(file), maxIssues: 0, writeTimestamp: false })
  .then((report) => console.log(JSON.stringify(report)))
  .catch((error) => {
    console.error(String(error));
    process.exit(2);
  });
