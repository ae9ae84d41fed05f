// placeholder: being written
#include "server/cli/commands.h"
namespace govmesh::cli {
void addVerifySigs(CLI::App&, int&) {}
}
