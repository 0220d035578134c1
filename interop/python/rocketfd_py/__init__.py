"""rocketfd_py: an independent Python implementation of spec/fd-passing.md
(FD passing over fbthrift's Rocket transport on Linux Unix sockets).

Modules, one concern each:
  compact   Thrift Compact protocol encoder and schema-checked decoder
  frame     Rocket frames: layouts, checks, fragmentation, reassembly
  metadata  RequestRpcMetadata, ResponseRpcMetadata, FdMetadata, SETUP structs
  fdqueue   sequence arithmetic, the FD queue and the claim procedure
  fdsock    sendmsg / recvmsg with SCM_RIGHTS and control-message parsing
  outqueue  the sender's FD counter and unwritten bytes
  beneath   opening a file beneath a root directory (FdTest.open)
  fdtest    the FdTest structs and FdInfo
  server    server connections, the FdTest service, the selectors loop
  client    client connection and calls
  log       stderr event lines
"""

SPEC_VERSION = "0.4"
