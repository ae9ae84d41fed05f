// placeholder: being written
#include "server/cli/commands.h"
namespace govmesh::cli {
void addBenchCrypto(CLI::App&, int&) {}
}
