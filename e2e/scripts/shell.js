// `make shell`: open the pinned mongosh (e2e/node_modules) on the running spid as the
// first-start atlasAdmin user. It reads where spid serves from <data-dir>/endpoints.json (spid
// writes it at every start) and the user from <data-dir>/initial-credentials.json.
// Usage: node e2e/scripts/shell.js [data-dir]  (default: $SPI_DATA_DIR, else ./data)
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const dataDir = process.argv[2] || process.env.SPI_DATA_DIR || 'data';
function read(name, hint) {
  const p = path.join(dataDir, name);
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (e) {
    console.error(`make shell: cannot read ${p} (${e.code || e.message}); ${hint}`);
    process.exit(1);
  }
}
const ep = read('endpoints.json', 'start spid first with `make run` (and the same SPI_DATA_DIR).');
const creds = read('initial-credentials.json', 'it holds the first-start admin user; use your own mongosh command otherwise.');
const mongosh = path.join(__dirname, '..', 'node_modules', '.bin', 'mongosh');
const uri = 'mongodb://' + encodeURIComponent(creds.username) + ':' + encodeURIComponent(creds.password) +
  '@' + ep.dataPlane + '/?authSource=admin' + (ep.tls ? '&tls=true' : '');
console.error(`Connecting to spid at ${ep.dataPlane} as ${creds.username} (workspace "default")`);
const r = spawnSync(mongosh, [uri, ...process.argv.slice(3)], { stdio: 'inherit' });
if (r.error) {
  console.error(`make shell: cannot run ${mongosh}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status === null ? 1 : r.status);
