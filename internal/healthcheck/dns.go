package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSOptions configure a DNS_CHECK.
type DNSOptions struct {
	ConnOptions
	// Type is the query type: A, NS, CNAME, SOA, MX, TXT or AAAA;
	// empty means SOA.
	Type string
	// Name is the query name; empty means "." (the root).
	Name string
}

var dnsTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "NS": dnsmessage.TypeNS, "CNAME": dnsmessage.TypeCNAME,
	"SOA": dnsmessage.TypeSOA, "MX": dnsmessage.TypeMX, "TXT": dnsmessage.TypeTXT,
	"AAAA": dnsmessage.TypeAAAA,
}

// DNS is keepalived's DNS_CHECK: one query over UDP with recursion
// desired. Datagrams that are not a response to it (too short, another
// ID, not a response) are ignored and the wait goes on; a response with
// RCODE other than NOERROR fails the check; NOERROR passes (keepalived
// does not require answer records).
type DNS struct {
	opts  DNSOptions
	qtype dnsmessage.Type
	qname dnsmessage.Name
}

// NewDNS returns a DNS_CHECK checker.
func NewDNS(opts DNSOptions) (*DNS, error) {
	var errs []error
	if err := opts.validate("DNS_CHECK", true); err != nil {
		errs = append(errs, err)
	}
	t := strings.ToUpper(opts.Type)
	if t == "" {
		t = "SOA"
	}
	qt, ok := dnsTypes[t]
	if !ok {
		errs = append(errs, fmt.Errorf("%w: DNS_CHECK: type %q: use A, NS, CNAME, SOA, MX, TXT or AAAA", ErrConfig, opts.Type))
	}
	name := opts.Name
	if name == "" {
		name = "."
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	if name != "." && (strings.HasPrefix(name, ".") || strings.Contains(name, "..")) {
		errs = append(errs, fmt.Errorf("%w: DNS_CHECK: name %q has an empty label", ErrConfig, opts.Name))
	}
	qn, err := dnsmessage.NewName(name)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: DNS_CHECK: name %q: %w", ErrConfig, opts.Name, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &DNS{opts: opts, qtype: qt, qname: qn}, nil
}

// Check sends the query and waits for its answer.
func (d *DNS) Check(ctx context.Context) Result {
	start := time.Now()
	id := uint16(rand.Uint32())
	q, err := d.query(id)
	if err != nil {
		return down(start, err)
	}
	conn, err := d.opts.dial(ctx, "udp")
	if err != nil {
		return down(start, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline(ctx, d.opts.timeout()))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(q); err != nil {
		return down(start, classify(fmt.Errorf("send query: %w", err)))
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return down(start, classify(fmt.Errorf("read answer: %w", err)))
		}
		rcode, ok := dnsResponse(buf[:n], id)
		if !ok {
			continue
		}
		if rcode != dnsmessage.RCodeSuccess {
			return down(start, fmt.Errorf("%w: rcode %s", ErrUnexpected, rcode))
		}
		return up(start, "DNS "+d.qtype.String()+" "+d.qname.String()+" NOERROR")
	}
}

func (d *DNS) query(id uint16) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: d.qname, Type: d.qtype, Class: dnsmessage.ClassINET}); err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return b.Finish()
}

// dnsResponse reports whether msg is a response to query id and its
// RCODE. Only the header is required to parse, as keepalived reads only
// the header.
func dnsResponse(msg []byte, id uint16) (dnsmessage.RCode, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.ID != id || !h.Response {
		return 0, false
	}
	return h.RCode, true
}
