// What to tell a user whose kernel has no headers (needed to build spillway.ko), shared by doctor, up
// and install. Debian and Ubuntu name the package linux-headers-RELEASE, but kernels built elsewhere
// (a vendor's, a cloud image's, one built by hand) have no such package: then do not suggest one.

export interface HeadersFacts {
  release: string
  /** /lib/modules/RELEASE/build exists. */
  present: boolean
  /** apt knows linux-headers-RELEASE: true or false; undefined where there is no apt. */
  packageKnown: boolean | undefined
}

export function headersPackage(release: string): string {
  return `linux-headers-${release}`
}

export function headersDir(release: string): string {
  return `/lib/modules/${release}/build`
}

/** What to do when the headers are missing. */
export function headersFix(f: HeadersFacts): string {
  const pkg = headersPackage(f.release)
  if (f.packageKnown === true) return `sudo apt-get install ${pkg}`
  const where = `so that ${headersDir(f.release)} exists`
  if (f.packageKnown === false) {
    const why = "this kernel is not from the distribution's archive, or the lists are old: `sudo apt-get update`"
    return `apt knows no package ${pkg} (${why}); install the headers from where this kernel came from, ${where}`
  }
  return `install the headers of kernel ${f.release} with the distribution's package manager, ${where}`
}

/** The sentence that says why the module can not be built, with what to do. */
export function missingHeaders(f: HeadersFacts): { problem: string; fix: string } {
  return {
    problem: `no kernel headers for ${f.release} (${headersDir(f.release)}), so spillway.ko can not be built`,
    fix: headersFix(f),
  }
}
