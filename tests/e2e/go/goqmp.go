// goqmp drives a QMP socket with Debian's go-qemu (github.com/digitalocean/
// go-qemu/qmp), as Go management tools do: connect and negotiate,
// query-status, stop, cont, and read the STOP and RESUME events.  It
// prints one line per fact and exits non-zero on the first failure.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func run(mon *qmp.SocketMonitor, cmd string) (map[string]interface{}, error) {
	raw, err := mon.Run([]byte(fmt.Sprintf(`{"execute":%q}`, cmd)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	var reply map[string]interface{}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("%s: bad reply %s: %v", cmd, raw, err)
	}
	return reply, nil
}

func status(mon *qmp.SocketMonitor) (string, error) {
	reply, err := run(mon, "query-status")
	if err != nil {
		return "", err
	}
	ret, ok := reply["return"].(map[string]interface{})
	if !ok {
		return "", fmt.Errorf("query-status: no return in %v", reply)
	}
	return fmt.Sprint(ret["status"]), nil
}

func waitEvent(events <-chan qmp.Event, name string) error {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Event == name {
				fmt.Printf("event %s\n", name)
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no %s event", name)
		}
	}
}

func main() {
	if err := drive(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "goqmp:", err)
		os.Exit(1)
	}
}

func drive(path string) error {
	mon, err := qmp.NewSocketMonitor("unix", path, 10*time.Second)
	if err != nil {
		return err
	}
	if err := mon.Connect(); err != nil {
		return err
	}
	defer mon.Disconnect()
	fmt.Printf("connected %s\n", mon.Version.Package)
	raw, err := mon.Events(context.Background())
	if err != nil {
		return err
	}
	// go-qemu's event channel is unbuffered and, as with QEMU, STOP comes
	// before stop's reply: drain it concurrently or Run never returns.
	events := make(chan qmp.Event, 64)
	go func() {
		for ev := range raw {
			events <- ev
		}
	}()
	steps := []struct{ cmd, event, status string }{
		{"", "", "running"},
		{"stop", "STOP", "paused"},
		{"cont", "RESUME", "running"},
	}
	for _, s := range steps {
		if s.cmd != "" {
			if _, err := run(mon, s.cmd); err != nil {
				return err
			}
			if err := waitEvent(events, s.event); err != nil {
				return err
			}
		}
		st, err := status(mon)
		if err != nil {
			return err
		}
		if st != s.status {
			return fmt.Errorf("status %s, want %s", st, s.status)
		}
		fmt.Printf("status %s\n", st)
	}
	return nil
}
