// The version of this command: package.json's (dkms.conf's PACKAGE_VERSION is checked against it by a test).
import fs from 'node:fs'

export const VERSION: string = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version
