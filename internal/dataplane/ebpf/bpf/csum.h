/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* csum.h: checksum helpers. */
#ifndef GOVS_CSUM_H
#define GOVS_CSUM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* ipv4_csum returns the header checksum of a 20-byte IPv4 header whose
 * check field is zero. */
static __always_inline __u16 ipv4_csum(void *iph)
{
	__u64 sum = 0;
	__u16 *w = iph;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return csum_fold(sum);
}

#endif
