package audit

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/store"
)

// Events by confirmation come from the partial index (migration 10 keeps
// only events that have a confirmation in it), on both databases, with
// the type filter on top; events without a confirmation are never
// returned for one.
func TestListByConfirmation(t *testing.T) {
	forBackends(t, func(t *testing.T, bk backend) {
		f := newFixture(t, bk, Options{})
		ctx := context.Background()
		for _, e := range []Event{
			{Type: MessageReceived, RequestID: "r1", Text: "scale checkout to 3"},
			{Type: ConfirmationRequested, RequestID: "r1", ConfirmationID: "c1"},
			{Type: ConfirmationRequested, RequestID: "r2", ConfirmationID: "c2"},
			{Type: ActionStarted, RequestID: "r1", ConfirmationID: "c1"},
			{Type: ActionSucceeded, RequestID: "r1", ConfirmationID: "c1"},
			{Type: ActionStarted, RequestID: "r3"},
		} {
			f.record(t, e)
		}
		got, err := f.rec.List(ctx, Filter{ConfirmationID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Type != ConfirmationRequested || got[2].Type != ActionSucceeded {
			t.Fatalf("events of c1: %v", types(got))
		}
		got, err = f.rec.List(ctx, Filter{ConfirmationID: "c1", Types: []Type{ActionStarted, ActionSucceeded, ActionFailed}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Type != ActionStarted {
			t.Fatalf("action events of c1: %v", types(got))
		}
		if f.db.Dialect() != store.SQLite {
			return
		}
		if plan := queryPlan(t, f, Filter{ConfirmationID: "c1"}); !strings.Contains(plan, "USING INDEX audit_events_confirmation") {
			t.Errorf("query plan by confirmation: %q, want it to use audit_events_confirmation", plan)
		}
	})
}

// Events of the types not written for every request come from the partial
// (type, seq) index (migration 10); the frequent ones are read by seq.
func TestListByType(t *testing.T) {
	forBackends(t, func(t *testing.T, bk backend) {
		f := newFixture(t, bk, Options{})
		ctx := context.Background()
		for _, e := range []Event{
			{Type: MessageReceived, RequestID: "r1", Text: "status of checkout"},
			{Type: IntegrityOverridden, Error: "integrity check failed"},
			{Type: ActionStarted, RequestID: "r1"},
			{Type: ConfirmationRequested, RequestID: "r2", ConfirmationID: "c2"},
			{Type: MessageReceived, RequestID: "r2", Text: "scale cart to 2"},
		} {
			f.record(t, e)
		}
		for _, tc := range []struct {
			types []Type
			want  []Type
		}{
			{[]Type{IntegrityOverridden}, []Type{IntegrityOverridden}},
			{[]Type{MessageReceived}, []Type{MessageReceived, MessageReceived}},
			{[]Type{ConfirmationRequested, IntegrityOverridden}, []Type{IntegrityOverridden, ConfirmationRequested}},
			{[]Type{ActionStarted, IntegrityOverridden}, []Type{IntegrityOverridden, ActionStarted}},
		} {
			got, err := f.rec.List(ctx, Filter{Types: tc.types})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(types(got), tc.want) {
				t.Errorf("events of %v: %v, want %v", tc.types, types(got), tc.want)
			}
		}
		if f.db.Dialect() != store.SQLite {
			return
		}
		if plan := queryPlan(t, f, Filter{Types: []Type{IntegrityOverridden}}); !strings.Contains(plan, "USING INDEX audit_events_type") {
			t.Errorf("query plan of a rare type: %q, want it to use audit_events_type", plan)
		}
	})
}

// queryPlan is SQLite's plan for f's query.
func queryPlan(t *testing.T, f *fixture, flt Filter) string {
	t.Helper()
	q, args := flt.query()
	rows, err := f.db.SQL().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// The frequent types left out of the type index are event types.
func TestFrequentTypesAreTypes(t *testing.T) {
	for _, typ := range store.AuditFrequentTypes() {
		if !Type(typ).Valid() {
			t.Errorf("store.AuditFrequentTypes names %q, not an audit event type", typ)
		}
	}
}

func types(evs []Event) []Type {
	var out []Type
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
