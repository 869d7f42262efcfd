//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
)

// The small-packet UDP flood: many flows (one unconnected socket per
// source port) of 18-byte datagrams (64-byte frames with the FCS) to
// VIP:9000, sent with sendmmsg by two goroutines; forwarded is what
// reaches the realservers' interfaces, counted by their rx counters.
const (
	floodPort    = 9000
	floodFlows   = 1024
	floodBatch   = 64
	floodPayload = 18
)

// floodResult is one flood run.
type floodResult struct {
	SentPPS      float64 `json:"sent_pps"`
	ForwardedPPS float64 `json:"forwarded_pps"`
	CPU          cpuUse  `json:"cpu"`
}

func linkStats(nsName, dev string) (rx, tx uint64, err error) {
	h, err := netns.GetFromName(nsName)
	if err != nil {
		return 0, 0, err
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return 0, 0, err
	}
	defer nl.Close()
	l, err := nl.LinkByName(dev)
	if err != nil {
		return 0, 0, err
	}
	s := l.Attrs().Statistics
	return s.RxPackets, s.TxPackets, nil
}

func (h *harness) runFlood(ctx context.Context, t *topo, targets []string, d time.Duration, dirPID int) (floodResult, error) {
	var r floodResult
	type sock struct {
		pc  *ipv4.PacketConn
		dst *net.UDPAddr
	}
	socks := make([]sock, 0, floodFlows)
	defer func() {
		for _, s := range socks {
			s.pc.Close()
		}
	}()
	if err := t.inNS("client", func() error {
		for i := range floodFlows {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(clientIP)})
			if err != nil {
				return err
			}
			dst := &net.UDPAddr{IP: net.ParseIP(targets[i%len(targets)]), Port: floodPort}
			socks = append(socks, sock{pc: ipv4.NewPacketConn(c), dst: dst})
		}
		return nil
	}); err != nil {
		return r, fmt.Errorf("open flood sockets: %w", err)
	}
	rxBefore := make([]uint64, 2)
	for i := range rxBefore {
		var err error
		if rxBefore[i], _, err = linkStats(t.ns(fmt.Sprintf("rs%d", i+1)), "e0"); err != nil {
			return r, err
		}
	}
	_, txBefore, err := linkStats(t.ns("client"), "c0")
	if err != nil {
		return r, err
	}
	cpuBefore := sampleCPU(dirPID)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	var sent atomic.Uint64
	payload := make([]byte, floodPayload)
	for g := range 2 {
		wg.Go(func() {
			msgs := make([]ipv4.Message, floodBatch)
			for i := g; time.Now().Before(stop) && ctx.Err() == nil; i += 2 {
				s := socks[i%len(socks)]
				for j := range msgs {
					msgs[j] = ipv4.Message{Buffers: [][]byte{payload}, Addr: s.dst}
				}
				n, err := s.pc.WriteBatch(msgs, 0)
				if err == nil {
					sent.Add(uint64(n))
				}
			}
		})
	}
	wg.Wait()
	// Let the queues drain.
	time.Sleep(200 * time.Millisecond)
	cpuAfter := sampleCPU(dirPID)
	var fwd uint64
	for i := range rxBefore {
		rx, _, err := linkStats(t.ns(fmt.Sprintf("rs%d", i+1)), "e0")
		if err != nil {
			return r, err
		}
		fwd += rx - rxBefore[i]
	}
	_, txAfter, err := linkStats(t.ns("client"), "c0")
	if err != nil {
		return r, err
	}
	secs := d.Seconds()
	r.SentPPS = float64(txAfter-txBefore) / secs
	r.ForwardedPPS = float64(fwd) / secs
	r.CPU = cpuDelta(cpuBefore, cpuAfter)
	return r, nil
}
