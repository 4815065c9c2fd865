"""`llmq status` says which kernel path run-time dispatch picked: the ISA (capped by
LLMQ_CPU_ISA, as the kernels are), the ISAs this CPU and build support, and the GEMM driver for
the model's weights at decode and prefill sizes; the text form prints the same line."""

from integration_harness import Harness, check


def main():
    with Harness('integration_status_names_the_kernel_isa', timeout=60) as h:
        model = h.make_model('small')
        daemon = h.start_daemon(model)
        k = h.status(daemon.instance)['cpu_kernels']
        h.log(f'cpu_kernels: {k}')
        check(k['isa'] in k['supported'], f'the ISA in use {k["isa"]} is not among the supported {k["supported"]}')
        check('scalar' in k['supported'], 'scalar is always supported')
        check(k['weights'] and k['gemm_decode'] and k['gemm_prefill'], f'weights or gemm paths missing: {k}')
        text = h.llmq('status').stdout
        check(f'cpu kernels: {k["isa"]}' in text, f'llmq status does not name the ISA:\n{text}')
        check(daemon.stop() == 0, 'llmqd did not exit 0')
        # Capped: the daemon reports the capped ISA, not the CPU's best.
        h.env['LLMQ_CPU_ISA'] = 'scalar'
        daemon = h.start_daemon(model)
        capped = h.status(daemon.instance)['cpu_kernels']
        check(capped['isa'] == 'scalar', f'LLMQ_CPU_ISA=scalar: status says {capped["isa"]}')
        check(capped['gemm_decode'] == 'scalar reference', f'scalar dispatch runs {capped["gemm_decode"]}')
        check(daemon.stop() == 0, 'llmqd did not exit 0')


if __name__ == '__main__':
    main()
