package wire

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"
)

// Request is one decoded request, handed to Handler.Handle. Answer it with
// Respond or Fail exactly once; after that the Request belongs to the
// connection again and must not be touched.
type Request struct {
	Header
	// Msg is the decoded body at Header.Version. Its byte fields alias the
	// connection's read buffer: a handler that answers before Handle returns
	// may use them freely, one that answers later keeps the buffer alive.
	// Responses must not alias request bytes.
	Msg kmsg.Request
	// Remote is the client's address.
	Remote net.Addr
	// Received is when the frame was read.
	Received time.Time
	// Span is the request's span (a no-op span when tracing is off).
	Span trace.Span

	size     int
	regions  []Region
	done     chan struct{}
	answered atomic.Bool
	resp     kmsg.Response
	err      error
}

// Respond answers the request with resp, which must have the request's
// version set (kmsg's ResponseKind does). A nil resp sends nothing, as for
// a produce request with acks=0.
func (r *Request) Respond(resp kmsg.Response) {
	if r.answered.Swap(true) {
		panic("wire: request answered twice")
	}
	r.resp = resp
	r.done <- struct{}{}
}

// Fail answers the request by closing the connection once the responses to
// earlier requests are written; err is logged.
func (r *Request) Fail(err error) {
	if r.answered.Swap(true) {
		panic("wire: request answered twice")
	}
	if err == nil {
		err = errors.New("wire: request failed")
	}
	r.err = err
	r.done <- struct{}{}
}

// getRequest returns a fresh Request. Requests are not pooled: the reader
// looks at one after handing it over (to learn whether it was answered
// synchronously), so it must not be recycled under it.
func getRequest() *Request { return &Request{done: make(chan struct{}, 1)} }

// conn is one client connection: a reading goroutine that decodes and
// dispatches, and a writing goroutine that sends answers in order.
type conn struct {
	srv    *Server
	nc     net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *Request
	once   sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{srv: s, nc: nc, ctx: ctx, cancel: cancel, queue: make(chan *Request, s.cfg.MaxInflight)}
}

func (c *conn) close() {
	c.once.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) serve() {
	tel := c.srv.tel
	tel.connOpened(c.ctx)
	defer tel.connClosed(context.Background())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()
	c.read()
	close(c.queue)
	<-writerDone
	c.close()
}

func (c *conn) read() {
	s := c.srv
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var buf []byte
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
			return
		}
		frame, err := ReadFrame(br, buf, s.cfg.MaxRequestSize)
		if err != nil {
			if !errors.Is(err, io.EOF) && c.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Info("closing connection", "remote", c.nc.RemoteAddr(), "err", err)
			}
			c.cancel()
			return
		}
		received := time.Now()
		h, msg, err := ParseRequest(frame, s.handler.Supports)
		if err != nil {
			if errors.Is(err, ErrUnsupportedVersion) && h.Key == kmsg.ApiVersions.Int16() {
				// KIP-511: answer at v0 with the supported ranges, so that
				// the client can retry at a version both sides know.
				resp := kmsg.NewPtrApiVersionsResponse()
				resp.SetVersion(0)
				resp.ErrorCode = 35 // UNSUPPORTED_VERSION
				resp.ApiKeys = s.handler.Versions()
				r := getRequest()
				r.Header, r.Remote, r.Received, r.size = h, c.nc.RemoteAddr(), received, len(frame)+4
				r.Span = trace.SpanFromContext(context.Background())
				if !c.enqueue(r) {
					return
				}
				r.Respond(resp)
				continue
			}
			s.log.Info("closing connection after a bad request", "remote", c.nc.RemoteAddr(),
				"api_key", h.Key, "api_version", h.Version, "client_id", h.ClientID, "err", err)
			c.cancel()
			return
		}
		r := getRequest()
		r.Header, r.Msg, r.Remote, r.Received, r.size = h, msg, c.nc.RemoteAddr(), received, len(frame)+4
		ctx, span := s.tel.start(c.ctx, h)
		r.Span = span
		if !c.enqueue(r) {
			return
		}
		s.handler.Handle(ctx, r)
		// A request answered before Handle returned no longer references
		// the buffer, so the next frame can reuse it; otherwise the handler
		// may still hold slices of it and the next frame gets a new one.
		if r.answered.Load() {
			buf = frame[:0]
		} else {
			buf = nil
		}
	}
}

func (c *conn) enqueue(r *Request) bool {
	select {
	case c.queue <- r:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// write sends answers in request order. It flushes only when the next
// answer is not ready yet, so pipelined responses share system calls.
func (c *conn) write() {
	s := c.srv
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	broken := false
	flush := func() {
		if !broken && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				broken = true
				c.close()
			}
		}
	}
	for {
		var r *Request
		select {
		case r = <-c.queue:
		default:
			flush() // nothing else queued: send what is buffered
			r = <-c.queue
		}
		if r == nil {
			break // queue closed
		}
		select {
		case <-r.done:
		default:
			flush() // the next answer is not ready: send what is buffered
			<-r.done
		}
		out := 0
		switch {
		case broken:
		case r.err != nil:
			s.log.Info("closing connection", "remote", r.Remote, "api_key", r.Key, "client_id", r.ClientID, "err", r.err)
			_ = bw.Flush()
			broken = true
			c.close()
		case r.resp != nil && len(r.regions) > 0:
			buf = AppendResponse(buf[:0], r.CorrelationID, r.resp)
			pieces, total, err := splice(buf, r.regions, r.resp.IsFlexible())
			if err == nil {
				err = writeSpliced(c.nc, bw, pieces)
			}
			if err != nil {
				s.log.Info("closing connection: sending file data failed", "remote", r.Remote, "err", err)
				broken = true
				c.close()
			}
			out = int(total)
		case r.resp != nil:
			if need := sizeHint(r.resp); cap(buf) < need {
				buf = make([]byte, 0, need) // one allocation instead of repeated doubling
			}
			buf = AppendResponse(buf[:0], r.CorrelationID, r.resp)
			out = len(buf)
			if _, err := bw.Write(buf); err != nil {
				broken = true
				c.close()
			}
			if cap(buf) > maxKeptBuffer {
				buf = nil // do not pin one huge fetch response per connection
			}
		}
		releaseAll(r.regions)
		s.tel.finish(r, out)
		r.Msg, r.resp, r.regions = nil, nil, nil
	}
	if !broken {
		_ = bw.Flush()
	}
}

// maxKeptBuffer is the largest response buffer a connection keeps between
// responses: enough for typical fetches, without pinning rare huge ones.
const maxKeptBuffer = 8 << 20

// sizeHint estimates a response's encoded size where record data dominates
// it (fetch responses), so its buffer is allocated once; 0 elsewhere.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range f.Topics {
		n += 16 + len(f.Topics[i].Topic)
		for j := range f.Topics[i].Partitions {
			n += 64 + len(f.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return n
}

// NewRequest returns a request that is served outside a connection (by
// tests and in-process callers): hand it to Handler.Handle, then collect
// the answer with Answer.
func NewRequest(msg kmsg.Request, clientID string) *Request {
	r := getRequest()
	r.Header = Header{Key: msg.Key(), Version: msg.GetVersion(), ClientID: clientID}
	r.Msg, r.Received = msg, time.Now()
	return r
}

// Answer waits for the handler's answer: the response (nil for none), its
// file regions, or the error it failed with. The caller releases the
// regions.
func (r *Request) Answer(ctx context.Context) (kmsg.Response, []Region, error) {
	select {
	case <-r.done:
		return r.resp, r.regions, r.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}
