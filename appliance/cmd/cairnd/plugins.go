package main

import (
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
	"github.com/cairnhq/cairn/plugins/lvm"
	"github.com/cairnhq/cairn/plugins/openstack"
)

// wirePlugins lists the plugins this appliance offers.
func wirePlugins() []plugins.Kind {
	return []plugins.Kind{
		file.Kind(),
		lvm.Kind(),
		openstack.Kind(),
	}
}
