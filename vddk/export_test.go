package vddk

// FlatExtent exposes Descriptor.flatExtent to tests.
func FlatExtent(d *Descriptor) (DescriptorExtent, error) { return d.flatExtent() }
