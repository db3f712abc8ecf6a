package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/quorumsync/quorumsync/internal/telemetry"
)

// The calls a primitive makes around one blocking Lock that waits once, then loses its lease
// while the holder works under it. The application would install its providers globally
// (otel.SetTracerProvider) instead of passing one.
func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	in, err := telemetry.New(telemetry.WithTracerProvider(tp))
	if err != nil {
		panic(err)
	}

	// Inside Lock.
	ctx, a := in.StartAcquire(context.Background(), telemetry.AcquireInfo{
		Primitive: "mutex", Operation: "Lock", Name: "orders:42", Nodes: 3, Quorum: 2,
	})
	_ = ctx // the per-node calls take ctx, so their spans are children of "mutex.Lock"
	a.Attempt()
	a.Waiting()
	a.Retry(40*time.Millisecond, "held")
	a.WakeUp("pubsub")
	a.Attempt()
	held := a.End(telemetry.OutcomeAcquired, 9900*time.Millisecond, nil)

	// Inside Do: the holder's span learns what happens to the lease.
	work, span := tp.Tracer("app").Start(context.Background(), "charge")
	detach := held.Attach(work)
	held.Lost(errors.New("lease: lost: expired")) // from the watchdog's goroutine
	detach()
	span.End()
	held.Released() // Unlock after the loss: the hold already ended

	for _, s := range spans.Ended() {
		fmt.Printf("%s status=%s", s.Name(), s.Status().Code)
		for _, kv := range s.Attributes() {
			if kv.Key == telemetry.OutcomeKey || kv.Key == telemetry.AttemptsKey {
				fmt.Printf(" %s=%s", kv.Key, kv.Value.Emit())
			}
		}
		for _, e := range s.Events() {
			fmt.Printf(" event=%s", e.Name)
		}
		fmt.Printf(" links=%d\n", len(s.Links()))
	}
	// Output:
	// mutex.Lock status=Unset quorumsync.attempts=2 quorumsync.outcome=acquired event=retry event=wakeup links=0
	// mutex.lost status=Error event=exception links=1
	// charge status=Unset event=lease.lost links=0
}
