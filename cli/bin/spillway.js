#!/usr/bin/env node
// The spillway command. The code is TypeScript in cli/src, compiled to cli/dist by `npm run build`.
// watch keeps one poll() per event source on libuv's pool (4 threads by default): give it room.
process.env.UV_THREADPOOL_SIZE ??= '16'
await import('../dist/main.js')
