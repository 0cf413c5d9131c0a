import t from 'tap'
import { mergeGpus, normalizeBus, parseNvidiaSmi } from '../../cli/src/lib/gpus.js'
import { MiB } from '../../cli/src/lib/sizes.js'

t.test('nvidia-smi CSV', async (t) => {
  // The format of `nvidia-smi --query-gpu=pci.bus_id,name,memory.total --format=csv,noheader,nounits`.
  const text = '00000000:00:06.0, NVIDIA H100 80GB HBM3, 81559\n00000000:41:00.0, NVIDIA RTX A6000, [N/A]\n\n'
  t.same(parseNvidiaSmi(text), [
    { model: 'NVIDIA H100 80GB HBM3', vramBytes: 81559 * MiB, busAddress: '0000:00:06.0' },
    { model: 'NVIDIA RTX A6000', vramBytes: 0, busAddress: '0000:41:00.0' },
  ])
  t.same(parseNvidiaSmi('No devices were found\n'), [])
  t.equal(normalizeBus('00000000:0A:00.0'), '0000:0a:00.0')
  t.equal(normalizeBus('01:00.0'), '0000:01:00.0')
})

t.test('sysfs and nvidia-smi merge', async (t) => {
  const smi = parseNvidiaSmi('00000000:01:00.0, A, 1024\n')
  t.same(mergeGpus(['0000:01:00.0', '0000:02:00.0'], smi), [
    { model: 'A', vramBytes: 1024 * MiB, busAddress: '0000:01:00.0' },
    { model: 'NVIDIA GPU (no driver)', vramBytes: 0, busAddress: '0000:02:00.0' },
  ])
  t.same(mergeGpus([], smi), smi, 'nvidia-smi alone (no sysfs) still counts')
  t.same(mergeGpus([], []), [])
})
