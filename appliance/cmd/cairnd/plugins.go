package main

import (
	"github.com/cairnhq/cairn/plugins"
	"github.com/cairnhq/cairn/plugins/file"
	"github.com/cairnhq/cairn/plugins/kvm"
	"github.com/cairnhq/cairn/plugins/lvm"
	"github.com/cairnhq/cairn/plugins/openstack"
	"github.com/cairnhq/cairn/plugins/vsphere"
)

// wirePlugins lists the plugins this appliance offers.
func wirePlugins() []plugins.Kind {
	return []plugins.Kind{
		file.Kind(),
		vsphere.Kind(),
		kvm.Kind(),
		lvm.Kind(),
		openstack.Kind(),
	}
}
