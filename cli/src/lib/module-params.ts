// Module parameters for modprobe/insmod, from sizes in bytes. The module takes MiB.
import { MiB } from './sizes.js'

export interface LoadOptions {
  poolBytes?: number
  floorBytes?: number
  warnBytes?: number
  criticalBytes?: number
  userLimitBytes?: number
  watchdogMs?: number
  testIoctls?: boolean
}

const mb = (bytes: number) => Math.ceil(bytes / MiB)

export function moduleParams(o: LoadOptions): string[] {
  const params: string[] = []
  if (o.poolBytes !== undefined) params.push(`pool_mb=${mb(o.poolBytes)}`)
  if (o.floorBytes !== undefined) params.push(`pool_floor_mb=${mb(o.floorBytes)}`)
  if (o.userLimitBytes !== undefined) params.push(`user_limit_mb=${mb(o.userLimitBytes)}`)
  if (o.warnBytes !== undefined) params.push(`watermark_warn_mb=${mb(o.warnBytes)}`)
  if (o.criticalBytes !== undefined) params.push(`watermark_critical_mb=${mb(o.criticalBytes)}`)
  if (o.watchdogMs !== undefined) params.push(`watchdog_ms=${o.watchdogMs}`)
  if (o.testIoctls) params.push('test_ioctls=1')
  return params
}

/** Explains a failed insmod/modprobe from its stderr, or returns undefined. */
export function explainLoadFailure(stderr: string): { message: string; hint: string } | undefined {
  if (/Key was rejected by service|Required key not available/i.test(stderr)) {
    return {
      message: 'the kernel refused spillway.ko because it is not signed with a key it trusts (Secure Boot or module.sig_enforce)',
      hint:
        "enroll DKMS's signing key: `sudo mokutil --import /var/lib/dkms/mok.pub`, reboot, confirm in the MOK manager, " +
        'then `sudo spillway install` (see docs/admin-guide.md, "Secure Boot")',
    }
  }
  if (/Invalid module format|disagrees about version/i.test(stderr)) {
    return {
      message: 'spillway.ko was built for another kernel',
      hint: 'rebuild it for this kernel: `sudo spillway install` (DKMS) or `sudo spillway up`',
    }
  }
  if (/File exists/i.test(stderr)) {
    return {
      message: 'the spillway module is already loaded',
      hint: 'resize with `sudo spillway pool set SIZE`, or `sudo spillway unload` first',
    }
  }
  if (/Cannot allocate memory/i.test(stderr)) {
    return {
      message: 'the module could not reserve the pool: not enough free memory',
      hint: 'ask for a smaller pool (--pool), or load at boot from the initramfs (`sudo spillway install`)',
    }
  }
  return undefined
}
