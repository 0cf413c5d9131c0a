#!/usr/bin/env node
// The spillway command. The code is TypeScript in cli/src, compiled to cli/dist by `npm run build`.
await import('../dist/main.js')
