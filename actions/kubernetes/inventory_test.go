package kubernetes

import (
	"context"
	"reflect"
	"testing"

	"github.com/parley-chatops/parley/internal/intent"
)

func TestInventoryListsTheDemo(t *testing.T) {
	sb, err := NewSandboxWithClock(clock, DemoManifests())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := NewInventory(Options{Clients: sb.Clients()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := inv.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := intent.Inventory{
		Namespaces: []string{"prod", "staging"},
		Deployments: map[string][]string{
			"prod":    {"auth", "cart", "checkout", "frontend", "payments", "search"},
			"staging": {"auth", "cart", "checkout", "payments"},
		},
		Services: []string{"auth", "cart", "checkout", "frontend", "payments", "search"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inventory\n got %+v\nwant %+v", got, want)
	}

	only, err := NewInventory(Options{Clients: sb.Clients(), Namespaces: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = only.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Namespaces, []string{"staging"}) || len(got.Deployments) != 1 || len(got.Services) != 4 {
		t.Errorf("inventory limited to staging: %+v", got)
	}
}
