@0xc1a5f00dfeed0001;
