from click.testing import CliRunner

from bloom_pipeline.cli import cli


def test_cli_help_lists_group():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Bloomerang" in result.output
