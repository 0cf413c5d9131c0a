// Whether the running kernel's headers are installed, and whether apt has a package for them.
import fs from 'node:fs'
import { headersDir, headersPackage } from '../lib/kernel-headers.js'
import type { HeadersFacts } from '../lib/kernel-headers.js'
import { exec, which } from './exec.js'
import { kernelRelease } from './system.js'

export function readHeadersFacts(release = kernelRelease()): HeadersFacts {
  const present = fs.existsSync(headersDir(release))
  let packageKnown: boolean | undefined
  // Asked only when it matters: apt-cache reads its lists (about 0.2 s).
  if (!present && which('apt-cache')) {
    packageKnown = exec(['apt-cache', 'show', '--no-all-versions', headersPackage(release)], { timeoutMs: 30_000 }).status === 0
  }
  return { release, present, packageKnown }
}
