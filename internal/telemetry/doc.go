// Package telemetry records what the engine does in OpenTelemetry: the acquire spans, the hold, the
// renewal and loss spans, and the metrics. Package tracing documents what is recorded and exports
// the names an application queries it by (the scope, the attribute keys, the outcomes); this
// package is the code that records it, for the engine alone.
package telemetry
